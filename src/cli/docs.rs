//! `completions` and `man`: the command line describing itself.

use std::path::PathBuf;

use letterpress::error::{Error, EXIT_OK};

use super::Cli;

#[derive(clap::Args)]
pub struct CompletionsArgs {
    /// The shell.
    shell: clap_complete::Shell,
}

#[derive(clap::Args)]
pub struct ManArgs {
    /// The folder to write every page into (e.g. /usr/local/share/man/man1).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
}

pub fn completions(args: CompletionsArgs) -> Result<i32, Error> {
    let mut cmd = <Cli as clap::CommandFactory>::command();
    clap_complete::generate(args.shell, &mut cmd, "letterpress", &mut std::io::stdout());
    Ok(EXIT_OK)
}

pub fn man(args: ManArgs) -> Result<i32, Error> {
    let cmd = <Cli as clap::CommandFactory>::command();
    let Some(dir) = args.out else {
        clap_mangen::Man::new(cmd)
            .render(&mut std::io::stdout())
            .map_err(|e| Error::io("stdout", e))?;
        return Ok(EXIT_OK);
    };
    std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
    clap_mangen::generate_to(cmd, &dir).map_err(|e| Error::io(&dir, e))?;
    let mut pages: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map_err(|e| Error::io(&dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "1"))
        .collect();
    pages.sort();
    for p in pages {
        println!("{}", p.display());
    }
    Ok(EXIT_OK)
}
