//! The README's "Start here" walks through the code with excerpts. A reader who opens the file
//! the excerpt names must find those lines there, so every excerpt is checked against its file.
use std::path::PathBuf;

fn repo() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

/// Lines without their indentation: the README shows a method body less indented than its file.
fn unindented(text: &str) -> Vec<&str> {
    text.lines().map(str::trim).collect()
}

/// Each fenced block of the section that names its language (the file map does not), with the
/// last file the section linked before it.
fn excerpts(section: &str) -> Vec<(String, String)> {
    let mut found = Vec::new();
    let (mut file, mut block): (Option<String>, Option<Option<String>>) = (None, None);
    for line in section.lines() {
        match &mut block {
            Some(text) if line.starts_with("```") => {
                if let Some(text) = text.take() {
                    let linked = file.clone().expect("every excerpt follows a link to its file");
                    found.push((linked, text));
                }
                block = None;
            }
            Some(Some(text)) => {
                text.push_str(line);
                text.push('\n');
            }
            Some(None) => {}
            None if line.starts_with("```") => block = Some((line.len() > 3).then(String::new)),
            None => {
                // The link's target: `[name](path)`; the last one on the line wins.
                for (i, _) in line.match_indices("](") {
                    let rest = &line[i + 2..];
                    if let Some(end) = rest.find(')') {
                        file = Some(rest[..end].to_owned());
                    }
                }
            }
        }
    }
    assert!(block.is_none(), "a fenced block of the README is never closed");
    found
}

#[test]
fn every_start_here_excerpt_is_in_the_file_it_names() {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let start = readme.find("\n## Start here").expect("the README has a Start here section");
    let end = start + 1 + readme[start + 1..].find("\n## ").unwrap();
    let found = excerpts(&readme[start..end]);
    assert!(found.len() >= 8, "the walk-through shows the code: {} excerpts", found.len());
    for (file, excerpt) in found {
        let source = std::fs::read_to_string(repo().join(&file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        let (source, excerpt) = (unindented(&source), unindented(&excerpt));
        assert!(excerpt.iter().any(|line| !line.is_empty()), "an empty excerpt of {file}");
        assert!(
            source.windows(excerpt.len()).any(|window| window == excerpt.as_slice()),
            "README's excerpt is not in {file} as shown:\n{}",
            excerpt.join("\n")
        );
    }
}
