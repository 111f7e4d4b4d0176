//! `letterpress key new FILE`: a new address key (see
//! `letterpress::contacts::key`).

use std::path::PathBuf;

use letterpress::contacts::{key::write_new, AddressKey};
use letterpress::error::{Error, EXIT_OK};

use super::Context;

#[derive(clap::Subcommand)]
pub enum Command {
    /// Write a new address key (32 random bytes in hexadecimal) to FILE,
    /// readable by its owner only; an existing file is never overwritten.
    /// Keep it as long as the contact history it keys.
    New {
        /// Where to write it.
        file: PathBuf,
    },
}

pub fn execute(command: Command, cx: &Context) -> Result<i32, Error> {
    match command {
        Command::New { file } => {
            write_new(&file)?;
            let key = AddressKey::load(&file)?;
            cx.out.info(
                "key_written",
                &format!(
                    "address key {} written to {} (mode 600); give it to runs as --address-key or LETTERPRESS_ADDRESS_KEY_FILE",
                    key.id(),
                    file.display()
                ),
                serde_json::json!({"id": key.id()}),
            );
            Ok(EXIT_OK)
        }
    }
}
