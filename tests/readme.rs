//! The README's first server is `examples/readme.rs`, which the browser test
//! (`tests/js/browser_readme.test.mjs`) runs: what a reader copies is what was tested.

#[test]
fn the_first_server_of_the_readme_is_the_readme_example() {
    let readme = include_str!("../README.md");
    let block = readme
        .split_once("## A channel server\n\n```rust,no_run\n")
        .and_then(|(_, rest)| rest.split_once("```"))
        .map(|(code, _)| code)
        .expect("the README has a server under \"A channel server\"");
    let example = include_str!("../examples/readme.rs");
    let code = example.split_once("\n\n").map(|(_doc, code)| code).expect("the example opens with its doc comment");
    assert_eq!(code, block, "examples/readme.rs must be the README's first server, word for word");
}
