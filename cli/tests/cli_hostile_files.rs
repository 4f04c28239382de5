//! Hostile and damaged files through the real binary: corrupt NPY headers, truncated arrays
//! and bad CSV cells fail with one line on stderr and exit code 1 (never a panic or a huge
//! allocation); `veil keygen` never overwrites a secret key or writes through a symbolic link
//! unless told to with `--force`, and then writes a fresh file of mode 0600; `veil compile
//! --help` states the real default of `--p-error`.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

mod common;
use common::{fails, s, veil};

fn ok(args: &[&str]) -> String {
    let (code, out, err) = veil(args);
    assert_eq!(code, 0, "veil {args:?}\nstdout:\n{out}\nstderr:\n{err}");
    out
}

/// A compiled program (`x: enc<u3>[3]`, `k: clear<u2>`, no bootstrap, so keygen is instant)
/// and its keys, shared by the tests.
struct Setup {
    dir: PathBuf,
}

impl Setup {
    fn p(&self, rel: &str) -> String {
        s(&self.dir.join(rel))
    }

    fn program(&self) -> String {
        s(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/golden/add_enc_clear.veil"))
    }

    fn client(&self) -> String {
        self.p("build/client.veil-artifact")
    }

    /// `veil encrypt` of `input`.
    fn encrypt(&self, input: &str) -> Vec<String> {
        vec![
            "encrypt".into(),
            "--client".into(),
            self.client(),
            "--keys".into(),
            self.p("keys/secret.veil-keys"),
            "--input".into(),
            input.into(),
            "--out".into(),
            self.p("x.veil-ct"),
        ]
    }

    /// `veil compile --inputset inputset`.
    fn compile(&self, inputset: &str) -> Vec<String> {
        vec![
            "compile".into(),
            self.program(),
            "--inputset".into(),
            inputset.into(),
            "--out".into(),
            self.p("build2"),
        ]
    }

    /// `veil keygen --out out`, with `extra` arguments.
    fn keygen(&self, out: &Path, extra: &[&str]) -> Vec<String> {
        let mut a = vec![
            "keygen".into(),
            "--client".into(),
            self.client(),
            "--out".into(),
            s(out),
        ];
        a.extend(extra.iter().map(|x| x.to_string()));
        a
    }
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

fn setup() -> &'static Setup {
    static S: OnceLock<Setup> = OnceLock::new();
    S.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("veil-cli-hostile-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let st = Setup { dir };
        std::fs::write(st.dir.join("x.csv"), "1,2,3,0\n7,0,5,3\n").unwrap();
        ok(&strs(&[
            "compile".into(),
            st.program(),
            "--inputset".into(),
            st.p("x.csv"),
            "--out".into(),
            st.p("build"),
        ]));
        ok(&strs(&st.keygen(&st.dir.join("keys"), &["--seed", "1"])));
        st
    })
}

/// An `.npy` file (version 1) with this header dictionary, padded like numpy pads it.
fn npy(dict: &str, body: &[u8]) -> Vec<u8> {
    let mut h = dict.to_string();
    while !(10 + h.len() + 1).is_multiple_of(64) {
        h.push(' ');
    }
    h.push('\n');
    let mut f = b"\x93NUMPY\x01\x00".to_vec();
    f.extend_from_slice(&(h.len() as u16).to_le_bytes());
    f.extend_from_slice(h.as_bytes());
    f.extend_from_slice(body);
    f
}

#[test]
fn npy_shape_that_overflows_is_an_error() {
    let st = setup();
    // 2**61 rows of one int64: 2**64 bytes, a capacity overflow if trusted.
    let f = npy(
        "{'descr': '<i8', 'fortran_order': False, 'shape': (2305843009213693952, 1), }",
        &[0; 8],
    );
    assert_eq!(f.len(), 136);
    let path = st.p("huge.npy");
    std::fs::write(&path, &f).unwrap();
    let want = [
        "huge.npy",
        "truncated .npy data",
        "2305843009213693952",
        "numpy.save",
    ];
    fails(&strs(&st.encrypt(&path)), &want);
    fails(&strs(&st.compile(&path)), &want);
    // A product that wraps around u64 to 0, and one that wraps to a small number.
    for (name, shape) in [
        ("wrap0.npy", "(4294967296, 4294967296)"),
        ("wrap4.npy", "(9223372036854775812, 2)"),
    ] {
        let f = npy(
            &format!("{{'descr': '<i8', 'fortran_order': False, 'shape': {shape}, }}"),
            &[0; 64],
        );
        let path = st.p(name);
        std::fs::write(&path, &f).unwrap();
        fails(&strs(&st.encrypt(&path)), &[name, "truncated .npy data"]);
        fails(&strs(&st.compile(&path)), &[name, "truncated .npy data"]);
    }
}

#[test]
fn npy_header_that_lies_about_its_length_is_an_error() {
    let st = setup();
    let path = st.p("long-header.npy");
    std::fs::write(&path, b"\x93NUMPY\x02\x00\xff\xff\xff\x7f{'descr'").unwrap();
    fails(
        &strs(&st.encrypt(&path)),
        &["long-header.npy", "header", "numpy.save"],
    );
}

#[test]
fn truncated_npy_is_an_error() {
    let st = setup();
    let full = veil_cli::io::npy::write_2d(2, 4, Some(&[1, 2, 3, 0, 7, 0, 5, 3]), None);
    let path = st.p("cut.npy");
    std::fs::write(&path, &full[..full.len() - 3]).unwrap();
    fails(
        &strs(&st.encrypt(&path)),
        &[
            "cut.npy",
            "truncated .npy data",
            "needs 64 bytes, 61 follow the header",
        ],
    );
    fails(&strs(&st.compile(&path)), &["cut.npy", "truncated"]);
    // Cut inside the header.
    std::fs::write(&path, &full[..40]).unwrap();
    fails(
        &strs(&st.encrypt(&path)),
        &["cut.npy", "truncated .npy header"],
    );
    // The whole file encrypts.
    std::fs::write(&path, &full).unwrap();
    ok(&strs(&st.encrypt(&path)));
}

#[test]
fn csv_bad_cell_names_line_and_column() {
    let st = setup();
    let path = st.p("bad.csv");
    std::fs::write(&path, "# x0,x1,x2,k\n1,2,3,0\n\n7, zz ,5,3\n").unwrap();
    let want = [
        "bad.csv: line 4, column 2: `zz` is not a number",
        "give integers",
    ];
    fails(&strs(&st.encrypt(&path)), &want);
    fails(&strs(&st.compile(&path)), &want);
    // A quoted cell spanning lines stays on one line of message.
    std::fs::write(&path, "1,2,3,0\n7,\"a\nb\",5,3\n").unwrap();
    fails(
        &strs(&st.encrypt(&path)),
        &["bad.csv: line 2, column 2: `a\\nb` is not a number"],
    );
}

#[cfg(unix)]
fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o777
}

#[cfg(unix)]
#[test]
fn keygen_never_overwrites_a_secret_key_without_force() {
    use std::os::unix::fs::PermissionsExt;
    let st = setup();
    let out = st.dir.join("keys-overwrite");
    std::fs::create_dir_all(&out).unwrap();
    let secret = out.join("secret.veil-keys");
    // A world-readable file already there: refused, left as it was.
    std::fs::write(&secret, b"old secret").unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o644)).unwrap();
    fails(
        &strs(&st.keygen(&out, &["--seed", "3"])),
        &["secret.veil-keys already exists", "--force"],
    );
    assert_eq!(std::fs::read(&secret).unwrap(), b"old secret");
    assert_eq!(mode(&secret), 0o644);
    assert!(!out.join("eval.veil-keys").exists());
    // --force replaces it with a fresh file of mode 0600 that holds real keys.
    ok(&strs(&st.keygen(&out, &["--seed", "3", "--force"])));
    assert_eq!(mode(&secret), 0o600);
    let first = std::fs::read(&secret).unwrap();
    assert_ne!(first, b"old secret");
    ok(&["inspect", &s(&secret)]);
    // A real secret key is not overwritten either, and nothing is left behind.
    fails(
        &strs(&st.keygen(&out, &["--seed", "4"])),
        &["already exists", "--force"],
    );
    assert_eq!(std::fs::read(&secret).unwrap(), first);
    let mut names: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["eval.veil-keys", "secret.veil-keys"]);
}

#[cfg(unix)]
#[test]
fn keygen_fresh_secret_key_is_private() {
    let st = setup();
    assert_eq!(mode(&st.dir.join("keys/secret.veil-keys")), 0o600);
}

#[cfg(unix)]
#[test]
fn keygen_never_writes_through_a_symlink() {
    use std::os::unix::fs::PermissionsExt;
    let st = setup();
    let out = st.dir.join("keys-link");
    std::fs::create_dir_all(&out).unwrap();
    let secret = out.join("secret.veil-keys");
    let target = st.dir.join("precious.txt");
    std::fs::write(&target, b"precious").unwrap();
    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o644)).unwrap();
    std::os::unix::fs::symlink(&target, &secret).unwrap();
    fails(
        &strs(&st.keygen(&out, &["--seed", "3"])),
        &["already exists (a symbolic link)", "--force"],
    );
    assert_eq!(std::fs::read(&target).unwrap(), b"precious");
    // A dangling link is refused too, and its target is not created.
    let missing = st.dir.join("not-there.txt");
    let dangling = st.dir.join("keys-dangling");
    std::fs::create_dir_all(&dangling).unwrap();
    std::os::unix::fs::symlink(&missing, dangling.join("secret.veil-keys")).unwrap();
    fails(
        &strs(&st.keygen(&dangling, &["--seed", "3"])),
        &["already exists (a symbolic link)", "--force"],
    );
    assert!(!missing.exists());
    // --force replaces the link itself with a private file; the target is untouched.
    ok(&strs(&st.keygen(&out, &["--seed", "3", "--force"])));
    assert!(std::fs::symlink_metadata(&secret).unwrap().is_file());
    assert_eq!(mode(&secret), 0o600);
    assert_eq!(std::fs::read(&target).unwrap(), b"precious");
    assert_eq!(mode(&target), 0o644);
    ok(&strs(&st.keygen(&dangling, &["--seed", "3", "--force"])));
    assert!(!missing.exists());
}

#[test]
fn keygen_refuses_a_folder_at_the_secret_path() {
    let st = setup();
    let out = st.dir.join("keys-folder");
    std::fs::create_dir_all(out.join("secret.veil-keys")).unwrap();
    fails(
        &strs(&st.keygen(&out, &["--seed", "3", "--force"])),
        &["secret.veil-keys is a folder"],
    );
}

#[test]
fn compile_help_states_the_real_p_error_default() {
    let help = ok(&["compile", "--help"]);
    let line = help
        .lines()
        .find(|l| l.contains("bootstrap decodes wrongly"))
        .unwrap_or_else(|| panic!("no --p-error help in\n{help}"));
    let p = veil_compiler::program::DEFAULT_P_ERROR;
    // "(default 2^E ≈ X)": both must give the constant.
    let (_, default) = line.split_once("(default 2^").expect(line);
    let (e, rest) = default.split_once(" ≈ ").expect(line);
    let x: f64 = rest.trim_end_matches(')').parse().expect(line);
    let e: i32 = e.parse().expect(line);
    assert!((2f64.powi(e) / p - 1.0).abs() < 0.01, "{line} vs {p:e}");
    assert!((x / p - 1.0).abs() < 0.01, "{line} vs {p:e}");
}
