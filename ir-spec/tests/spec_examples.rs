//! Every fenced `veil` block of `SPEC.md` must parse and verify, and print canonically in a way
//! that parses back to the same text, so the specification and the code cannot drift apart.

use veil_ir::text::{parse, print};

/// `(line of the opening fence, block text)` for every ```` ```veil ```` block.
fn veil_blocks(md: &str) -> Vec<(usize, String)> {
    let mut blocks = Vec::new();
    let mut current: Option<(usize, String)> = None;
    for (i, line) in md.lines().enumerate() {
        let fence = line.trim_start();
        match &mut current {
            None if fence.starts_with("```veil") => current = Some((i + 1, String::new())),
            Some(_) if fence.starts_with("```") => blocks.extend(current.take()),
            Some((_, text)) => {
                text.push_str(line);
                text.push('\n');
            }
            None => {}
        }
    }
    assert!(current.is_none(), "SPEC.md: unterminated ```veil block");
    blocks
}

#[test]
fn spec_examples_parse_and_verify() {
    let md = include_str!("../SPEC.md");
    let blocks = veil_blocks(md);
    assert!(
        blocks.len() >= 5,
        "SPEC.md has only {} veil examples",
        blocks.len()
    );
    let mut failures = Vec::new();
    for (line, text) in &blocks {
        match parse(text) {
            Err(e) => failures.push(format!("SPEC.md block at line {line}: {e}")),
            Ok(g) => {
                let canon = print(&g);
                match parse(&canon) {
                    Ok(g2) if print(&g2) == canon => {}
                    Ok(_) => {
                        failures.push(format!("block at line {line}: canonical form unstable"))
                    }
                    Err(e) => failures.push(format!("block at line {line}: reprint fails: {e}")),
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn block_extraction() {
    let md = "text\n```veil\nveil 1\n```\n```rust\nfn x() {}\n```\n  ```veil\na\nb\n  ```\n";
    assert_eq!(
        veil_blocks(md),
        vec![(2, "veil 1\n".to_string()), (8, "a\nb\n".to_string())]
    );
}

#[test]
fn spec_shows_a_canonical_form_that_is_exact() {
    // §7 shows a hand-written program followed by its canonical form: the printer must
    // reproduce the second block byte for byte.
    let blocks = veil_blocks(include_str!("../SPEC.md"));
    let exact = blocks.windows(2).any(|w| {
        let a = parse(&w[0].1).map(|g| print(&g));
        a.as_deref() == Ok(w[1].1.as_str()) && w[0].1 != w[1].1
    });
    assert!(
        exact,
        "no SPEC.md block is followed by its exact canonical form"
    );
}
