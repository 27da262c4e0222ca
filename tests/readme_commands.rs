//! The README's fuzz commands work as written (issue 14 item 5): every folder a `cargo fuzz run`
//! line names either exists in the repository or is made by a `mkdir -p` before it in the
//! same block (libFuzzer refuses a corpus folder that does not exist).

use std::path::Path;

#[test]
fn fuzz_commands_name_folders_that_exist() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let mut runs = 0;
    for block in readme.split("```sh").skip(1) {
        let block = &block[..block.find("```").unwrap_or(block.len())];
        let mut cwd = root.to_path_buf();
        let mut made: Vec<String> = Vec::new();
        for (n, line) in block.lines().enumerate() {
            let words: Vec<&str> = line.split('#').next().unwrap_or("").split_whitespace().collect();
            match words.as_slice() {
                ["cd", dir] => cwd = cwd.join(dir),
                ["mkdir", "-p", dirs @ ..] => made.extend(dirs.iter().map(|d| (*d).to_owned())),
                _ => {}
            }
            let Some(at) =
                words.iter().position(|w| *w == "fuzz").filter(|&i| words.get(i + 1) == Some(&"run"))
            else {
                continue;
            };
            runs += 1;
            // cargo fuzz run [-s none] TARGET [CORPUS...] [-- ...]
            let args: Vec<&str> = words[at + 2..].iter().take_while(|w| **w != "--").copied().collect();
            let mut i = 0;
            let mut positional = Vec::new();
            while i < args.len() {
                if args[i].starts_with('-') {
                    i += 2;
                } else {
                    positional.push(args[i]);
                    i += 1;
                }
            }
            for dir in positional.iter().skip(1) {
                assert!(
                    cwd.join(dir).is_dir() || made.iter().any(|m| m == dir),
                    "README fuzz command line {}: folder {dir} neither exists nor is made first: {line}",
                    n + 1
                );
            }
        }
    }
    assert!(runs >= 2, "the README's fuzz commands were not found");
}
