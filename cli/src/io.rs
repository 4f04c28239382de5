//! Shared file handling of the subcommands: reading and writing files with one-line errors,
//! loading veil artifacts and keys (checking their kind first), reading sample tables from CSV
//! and NPY files, and progress bars.
//!
//! Sample tables: one row per sample. For a `.veil` program the row holds every input
//! flattened (row-major) in declaration order; for an ML model it holds the float features.
//!
//! - CSV (the `csv` crate): comma-separated, blank lines and lines starting with `#` ignored;
//!   a first row with no number in it is a header and skipped.
//! - NPY (the `npyz` crate): a 2-D array `[samples, columns]`, integer (`i1`..`i8`,
//!   `u1`..`u8`, `b1`) or float (`f4`, `f8`, for ML models only), either byte order, C or
//!   Fortran order.
//!
//! Hostile files: no reader panics or allocates more than a small multiple of the file's size;
//! every count read from a file is checked (checked arithmetic, against the bytes really
//! there) first. Errors are one line: `<file>: <what is wrong>; <how to fix>`.
//!
//! Secret files (keys) are created new, mode 0600, never over an existing file or through a
//! symbolic link unless replacing is asked for ([`write_secret`]).

use super::CliError;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use veil_ir::Tensor;
use veil_runtime::artifact::{check_kind, describe_int, ArtifactError, IoSpec};

/// Reads a whole file.
pub fn read(path: &Path) -> Result<Vec<u8>, CliError> {
    std::fs::read(path).map_err(|e| {
        CliError(format!(
            "cannot read {}: {}; check the path",
            path.display(),
            io_reason(&e)
        ))
    })
}

fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        _ => e.to_string(),
    }
}

fn write_error(path: &Path, e: &std::io::Error) -> CliError {
    CliError(format!(
        "cannot write {}: {}; check that the folder is writable",
        path.display(),
        io_reason(e)
    ))
}

/// Creates the folder of `path` when it has one.
fn create_parent(path: &Path) -> Result<(), CliError> {
    match path.parent().filter(|d| !d.as_os_str().is_empty()) {
        Some(dir) => std::fs::create_dir_all(dir).map_err(|e| write_error(path, &e)),
        None => Ok(()),
    }
}

/// Writes a whole file (creating its folder). A `secret` file is written by
/// [`write_secret`] without `force`: never over an existing file or symbolic link, and
/// readable by its owner only.
pub fn write(path: &Path, data: &[u8], secret: bool) -> Result<(), CliError> {
    if secret {
        return write_secret(path, data, false);
    }
    create_parent(path)?;
    std::fs::write(path, data).map_err(|e| write_error(path, &e))
}

/// Checks that a secret file may be written at `path`: nothing is there, or `force` is given
/// and what is there is a file or a symbolic link (never a folder). The error for an existing
/// path names `--force`.
pub fn check_secret_free(path: &Path, force: bool) -> Result<(), CliError> {
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(CliError(format!(
            "cannot check {}: {}; check the folder's permissions",
            path.display(),
            io_reason(&e)
        ))),
        Ok(m) if m.is_dir() => Err(CliError(format!(
            "{} is a folder; remove it or give another --out folder",
            path.display()
        ))),
        Ok(_) if force => Ok(()),
        Ok(m) => Err(CliError(format!(
            "{} already exists{}; a secret key is never overwritten silently: give another --out \
             folder, or pass --force to replace it (what the old key encrypted can then no longer \
             be decrypted)",
            path.display(),
            if m.file_type().is_symlink() {
                " (a symbolic link)"
            } else {
                ""
            }
        ))),
    }
}

/// Options that create a new file (`O_CREAT | O_EXCL`: never an existing file, never through
/// a symbolic link, even a dangling one), readable and writable by its owner only (on Unix).
fn new_secret_file() -> std::fs::OpenOptions {
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    o
}

/// Creates a fresh temporary file beside `path` with [`new_secret_file`]; mode exactly 0600
/// whatever the umask.
fn create_temp(path: &Path) -> Result<(PathBuf, std::fs::File), CliError> {
    let name = path
        .file_name()
        .ok_or_else(|| {
            CliError(format!(
                "cannot write {}: not a file name; give a folder with --out",
                path.display()
            ))
        })?
        .to_string_lossy();
    let dir = path.parent().unwrap_or(Path::new(""));
    for i in 0..1000u32 {
        let tmp = dir.join(format!(".{name}.{}.{i}.tmp", std::process::id()));
        match new_secret_file().open(&tmp) {
            Ok(f) => {
                #[cfg(unix)]
                {
                    use std::os::unix::fs::PermissionsExt;
                    if let Err(e) = f.set_permissions(std::fs::Permissions::from_mode(0o600)) {
                        let _ = std::fs::remove_file(&tmp);
                        return Err(write_error(path, &e));
                    }
                }
                return Ok((tmp, f));
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(write_error(path, &e)),
        }
    }
    Err(CliError(format!(
        "cannot write {}: no free temporary file name beside it; remove the stale .{name}.*.tmp files",
        path.display()
    )))
}

/// Writes a secret file (keys): readable and writable by its owner only (mode 0600 on Unix),
/// written whole to a new temporary file beside `path` and then put in place, so that
/// `path` never holds half a key.
///
/// Without `force` an existing `path` (file, symbolic link or anything else) is an error that
/// names `--force`, and the file is put in place with a hard link, which fails rather than
/// replace anything created meanwhile. With `force` it replaces what is at `path` by a rename,
/// which replaces a symbolic link itself: nothing is ever written through a link.
pub fn write_secret(path: &Path, data: &[u8], force: bool) -> Result<(), CliError> {
    use std::io::Write;
    check_secret_free(path, force)?;
    create_parent(path)?;
    let (tmp, mut f) = create_temp(path)?;
    let written = f.write_all(data).and_then(|()| f.sync_all());
    drop(f);
    let placed = written.and_then(|()| {
        if force {
            std::fs::rename(&tmp, path)
        } else {
            place_new(&tmp, path, data)
        }
    });
    let _ = std::fs::remove_file(&tmp);
    match placed {
        Ok(()) => Ok(()),
        // Created meanwhile: the same error as when it was there from the start.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            Err(check_secret_free(path, false)
                .err()
                .unwrap_or_else(|| write_error(path, &e)))
        }
        Err(e) => Err(write_error(path, &e)),
    }
}

/// Puts the finished temporary file `tmp` at `path` unless something is there: a hard link
/// (atomic, fails on any existing path); where the file system has no hard links, `data` is
/// written to a file created new at `path` (removed again if that fails).
fn place_new(tmp: &Path, path: &Path, data: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    match std::fs::hard_link(tmp, path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Err(e),
        Err(_) => {
            let mut f = new_secret_file().open(path)?;
            let done = f.write_all(data).and_then(|()| f.sync_all());
            if done.is_err() {
                let _ = std::fs::remove_file(path);
            }
            done
        }
    }
}

/// One-line error for an artifact problem in `path`, with its fix.
pub fn artifact_error(path: &Path, e: &ArtifactError) -> CliError {
    let hint = e.hint();
    if hint.is_empty() {
        CliError(format!("{}: {e}", path.display()))
    } else {
        CliError(format!("{}: {e}; {hint}", path.display()))
    }
}

/// Reads `path` and decodes it with `load`, after checking that it holds `kind`.
pub fn load<T>(
    path: &Path,
    kind: &'static str,
    load: impl FnOnce(&[u8]) -> Result<T, ArtifactError>,
) -> Result<T, CliError> {
    let data = read(path)?;
    check_kind(&data, kind).map_err(|e| artifact_error(path, &e))?;
    tracing::debug!(path = %path.display(), bytes = data.len(), kind, "loading");
    load(&data).map_err(|e| artifact_error(path, &e))
}

/// Loads a runtime object (keys) from `path`, checking its kind first.
pub fn load_runtime<T>(
    path: &Path,
    kind: &'static str,
    load: impl FnOnce(&[u8]) -> veil_runtime::Result<T>,
) -> Result<T, CliError> {
    self::load(path, kind, |d| load(d).map_err(|e| runtime_error(kind, e)))
}

/// A runtime error met while loading data of `kind`, as an [`ArtifactError`] (with its hint).
pub fn runtime_error(kind: &'static str, e: veil_runtime::RuntimeError) -> ArtifactError {
    ArtifactError::from_runtime(kind, e)
}

/// Bytes for people.
pub fn size(n: usize) -> String {
    veil_compiler::optimizer::keys::human_bytes(n as u64)
}

/// A progress bar on stderr when it is a terminal; hidden otherwise.
pub fn bar(len: u64, what: &str) -> indicatif::ProgressBar {
    if !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let b = indicatif::ProgressBar::new(len);
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{spinner} {prefix} [{bar:30}] {pos}/{len} {msg} ({elapsed})",
    ) {
        b.set_style(style.progress_chars("=> "));
    }
    b.set_prefix(what.to_string());
    b
}

/// A spinner on stderr when it is a terminal; hidden otherwise.
pub fn spinner(what: &str) -> indicatif::ProgressBar {
    if !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let b = indicatif::ProgressBar::new_spinner();
    b.set_message(what.to_string());
    b.enable_steady_tick(std::time::Duration::from_millis(120));
    b
}

// ---------------------------------------------------------------- sample tables

/// A table of samples read from CSV or NPY, one row per sample.
#[derive(Clone, Debug)]
pub struct Table<T> {
    /// The file.
    pub path: PathBuf,
    /// Rows.
    pub rows: Vec<Vec<T>>,
    /// CSV: line number of every row; empty for NPY.
    lines: Vec<usize>,
    /// CSV: the header row's cells, when the file has one.
    pub header: Option<Vec<String>>,
}

impl<T> Table<T> {
    /// Where cell `(r, c)` is, for messages: `line L, column C` (CSV, 1-based) or
    /// `element [r, c]` (NPY, 0-based like numpy).
    pub fn at(&self, r: usize, c: usize) -> String {
        match self.lines.get(r) {
            Some(l) => format!("line {l}, column {}", c.saturating_add(1)),
            None => format!("element [{r}, {c}]"),
        }
    }

    /// Where row `r` is.
    pub fn row_at(&self, r: usize) -> String {
        match self.lines.get(r) {
            Some(l) => format!("line {l}"),
            None => format!("row {r}"),
        }
    }

    /// Fails unless every row has `want` columns; `layout` describes them for the message.
    pub fn expect_columns(&self, want: usize, layout: &str) -> Result<(), CliError> {
        if self.rows.is_empty() {
            return Err(CliError(format!(
                "{}: no samples; give one row per sample ({want} columns: {layout})",
                self.path.display()
            )));
        }
        for (r, row) in self.rows.iter().enumerate() {
            if row.len() != want {
                return Err(CliError(format!(
                    "{}: {} has {} column(s), expected {want} ({layout}); give one row per sample",
                    self.path.display(),
                    self.row_at(r),
                    row.len()
                )));
            }
        }
        Ok(())
    }
}

/// Integer cells.
pub type IntTable = Table<i64>;
/// Float cells.
pub type FloatTable = Table<f64>;

fn is_npy(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("npy"))
}

/// Decodes a sample table from the bytes `data` of `path` (NPY when its extension is `.npy`,
/// else CSV): `from_npy` converts an NPY array, `cell` parses one CSV cell (its error message
/// gets the file, line and column prefixed). Memory stays proportional to `data`.
fn table_from_bytes<T>(
    path: &Path,
    data: &[u8],
    from_npy: impl Fn(&npy::Array) -> Result<Vec<Vec<T>>, String>,
    cell: impl Fn(&str) -> Result<T, String>,
) -> Result<Table<T>, CliError> {
    if is_npy(path) {
        let in_file = |e: String| CliError(format!("{}: {e}", path.display()));
        let a = npy::parse(data).map_err(in_file)?;
        return Ok(Table {
            path: path.into(),
            rows: from_npy(&a).map_err(in_file)?,
            lines: Vec::new(),
            header: None,
        });
    }
    let (rows, lines, header) = csv_rows(path, data, cell)?;
    Ok(Table {
        path: path.into(),
        rows,
        lines,
        header,
    })
}

/// `s` for a one-line message: control characters escaped, at most `max` characters kept.
fn shorten(s: &str, max: usize) -> String {
    let mut out: String = s.chars().take(max).flat_map(char::escape_debug).collect();
    if s.chars().nth(max).is_some() {
        out.push('…');
    }
    out
}

/// A cell as quoted in messages.
fn shown(s: &str) -> String {
    shorten(s, 40)
}

fn int_cell(s: &str) -> Result<i64, String> {
    s.parse::<i64>().map_err(|_| {
        let float = s.parse::<f64>().is_ok();
        let s = shown(s);
        if float {
            format!(
                "`{s}` is not an integer; this program takes integer inputs: give whole numbers"
            )
        } else {
            format!("`{s}` is not a number; give integers, comma-separated")
        }
    })
}

fn float_cell(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(v),
        _ => Err(format!(
            "`{}` is not a finite number; give numbers, comma-separated",
            shown(s)
        )),
    }
}

fn ints_from_bytes(path: &Path, data: &[u8]) -> Result<IntTable, CliError> {
    table_from_bytes(path, data, npy::Array::ints, int_cell)
}

fn floats_from_bytes(path: &Path, data: &[u8]) -> Result<FloatTable, CliError> {
    table_from_bytes(path, data, npy::Array::floats, float_cell)
}

/// Reads integer samples from a `.csv` or `.npy` file.
pub fn read_ints(path: &Path) -> Result<IntTable, CliError> {
    ints_from_bytes(path, &read(path)?)
}

/// Reads float samples from a `.csv` or `.npy` file.
pub fn read_floats(path: &Path) -> Result<FloatTable, CliError> {
    floats_from_bytes(path, &read(path)?)
}

/// Parses CSV text (the `csv` crate) into rows of cells converted by `cell`, with their 1-based
/// line numbers. Cells are trimmed; blank lines, lines starting with `#` (after spaces) and a
/// first row without any number in it (a header) are skipped. Rows may differ in length
/// ([`Table::expect_columns`] reports that with its line).
fn csv_rows<T>(
    path: &Path,
    data: &[u8],
    cell: impl Fn(&str) -> Result<T, String>,
) -> Result<CsvRows<T>, CliError> {
    if std::str::from_utf8(data).is_err() {
        return Err(CliError(format!(
            "{}: not a text file; give a CSV file (one sample per line) or a .npy array",
            path.display()
        )));
    }
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .comment(Some(b'#'))
        .from_reader(data);
    let mut record = csv::StringRecord::new();
    let (mut rows, mut lines) = (Vec::new(), Vec::new());
    let mut first = true;
    let mut header = None;
    let (mut line, mut counted) = (1usize, 0usize);
    loop {
        let more = reader.read_record(&mut record).map_err(|e| {
            let at = e
                .position()
                .map_or(String::new(), |p| format!("line {}: ", p.line()));
            CliError(format!(
                "{}: {at}{}; give numbers, comma-separated, one sample per line",
                path.display(),
                shorten(&e.to_string(), 160)
            ))
        })?;
        if !more {
            break;
        }
        // The crate's line count leaves out comment lines: count newlines instead. A record's
        // position is where the previous one ended; skip the empty and `#` lines that the
        // crate skipped from there. Records come in order, so each byte is looked at twice
        // at most.
        let mut at = record
            .position()
            .map_or(data.len(), |p| {
                usize::try_from(p.byte()).unwrap_or(data.len())
            })
            .clamp(counted, data.len());
        line += data[counted..at].iter().filter(|&&b| b == b'\n').count();
        loop {
            let rest = &data[at..];
            let eol = rest.iter().position(|&b| b == b'\n');
            let text = &rest[..eol.unwrap_or(rest.len())];
            let skipped = text.is_empty() || text == b"\r" || text.first() == Some(&b'#');
            match eol {
                Some(i) if skipped => {
                    at += i + 1;
                    line += 1;
                }
                _ => break,
            }
        }
        counted = at;
        let blank = record.len() == 1 && record.get(0) == Some("");
        if blank || record.get(0).is_some_and(|c| c.starts_with('#')) {
            continue;
        }
        if std::mem::take(&mut first) && record.iter().all(|c| c.parse::<f64>().is_err()) {
            header = Some(record.iter().map(str::to_string).collect());
            continue;
        }
        let mut row = Vec::with_capacity(record.len());
        for (c, s) in record.iter().enumerate() {
            row.push(cell(s).map_err(|e| {
                CliError(format!(
                    "{}: line {line}, column {}: {e}",
                    path.display(),
                    c + 1
                ))
            })?);
        }
        rows.push(row);
        lines.push(line);
    }
    Ok((rows, lines, header))
}

/// Rows, their line numbers and the header of a CSV file.
type CsvRows<T> = (Vec<Vec<T>>, Vec<usize>, Option<Vec<String>>);

impl FloatTable {
    /// Takes the label column named by `which` out of every row: `last`, `first`, a 1-based
    /// column number, or a header name. Returns the labels, one per row.
    pub fn take_labels(&mut self, which: &str) -> Result<Vec<f64>, CliError> {
        let cols = self.rows.first().map_or(0, Vec::len);
        let names = self.header.as_deref().unwrap_or(&[]);
        let col = match which {
            "last" => cols.checked_sub(1),
            "first" => (cols > 0).then_some(0),
            w => match w.parse::<usize>() {
                Ok(n) => n.checked_sub(1).filter(|&c| c < cols),
                Err(_) => names.iter().position(|h| h == w),
            },
        };
        let col = col.ok_or_else(|| {
            let known = if names.is_empty() {
                String::new()
            } else {
                format!(" (header: {})", names.join(", "))
            };
            CliError(format!(
                "{}: no label column {which:?} among {cols} column(s){known}; give last, first, a 1-based column number or a header name",
                self.path.display()
            ))
        })?;
        let mut labels = Vec::with_capacity(self.rows.len());
        for r in 0..self.rows.len() {
            if self.rows[r].len() <= col {
                return Err(CliError(format!(
                    "{}: {} has {} column(s), no label column {}",
                    self.path.display(),
                    self.row_at(r),
                    self.rows[r].len(),
                    col + 1
                )));
            }
            labels.push(self.rows[r].remove(col));
        }
        if let Some(h) = self.header.as_mut().filter(|h| col < h.len()) {
            h.remove(col);
        }
        Ok(labels)
    }
}

/// Splits one integer row into one tensor per input (`specs` in order), checking every value
/// against its input's type; errors name the file, line and column.
pub fn split_row(
    table: &IntTable,
    r: usize,
    specs: &[IoSpec],
) -> Result<Vec<Tensor<i64>>, CliError> {
    let short = |have: usize| {
        let cols: Vec<(String, usize)> = specs
            .iter()
            .map(|s| (s.name.clone(), s.ty.numel()))
            .collect();
        CliError(format!(
            "{}: {} has {have} column(s), too few for the inputs ({}); give one row per sample",
            table.path.display(),
            table.row_at(r),
            layout(&cols)
        ))
    };
    let row = table.rows.get(r).ok_or_else(|| short(0))?;
    let mut col = 0usize;
    let mut out = Vec::with_capacity(specs.len());
    for s in specs {
        let n = s.ty.numel();
        let vals = col
            .checked_add(n)
            .and_then(|end| row.get(col..end))
            .ok_or_else(|| short(row.len()))?;
        for (i, &v) in vals.iter().enumerate() {
            if !s.ty.int.contains(v as i128) {
                return Err(CliError(format!(
                    "{}: {} (input {:?}, element {i}): {v} does not fit {}; give values in range",
                    table.path.display(),
                    table.at(r, col + i),
                    s.name,
                    describe_int(s.ty.int)
                )));
            }
        }
        out.push(Tensor::new(s.ty.shape.to_vec(), vals.to_vec()).map_err(|e| CliError(e.0))?);
        col += n;
    }
    Ok(out)
}

/// `x: 3 values, k: 1 value`: the column layout of `specs`.
pub fn layout(specs: &[(String, usize)]) -> String {
    let parts: Vec<String> = specs
        .iter()
        .map(|(n, c)| format!("{n}: {c} value{}", if *c == 1 { "" } else { "s" }))
        .collect();
    format!("{} in declaration order", parts.join(", "))
}

/// Integer samples for the inputs `specs`: checks the column count, then splits every row.
pub fn int_samples(table: &IntTable, specs: &[IoSpec]) -> Result<Vec<Vec<Tensor<i64>>>, CliError> {
    let cols: Vec<(String, usize)> = specs
        .iter()
        .map(|s| (s.name.clone(), s.ty.numel()))
        .collect();
    let want = cols
        .iter()
        .try_fold(0usize, |a, c| a.checked_add(c.1))
        .ok_or_else(|| {
            CliError(format!(
                "{}: the inputs need more columns than fit in memory ({})",
                table.path.display(),
                layout(&cols)
            ))
        })?;
    table.expect_columns(want, &layout(&cols))?;
    (0..table.rows.len())
        .map(|r| split_row(table, r, specs))
        .collect()
}

/// NumPy's `.npy` format (version 1 to 3), read and written with the `npyz` crate. Reading is
/// bounded: the header is checked (length, nesting) before it is parsed, and the shape is
/// checked with checked arithmetic against the real data length before anything is allocated.
pub mod npy {
    use npyz::{DType, NpyFile, NpyHeader, Order, TypeChar, WriterBuilder};

    /// The longest header read, in bytes: numpy's own limit when loading
    /// (`numpy.load(max_header_size=10000)`); its headers are about 128 bytes.
    pub const MAX_HEADER_LEN: usize = 10_000;

    /// The deepest nesting of brackets read in a header (a 2-D array of a plain dtype has 2):
    /// keeps the header parser's recursion small.
    const MAX_HEADER_DEPTH: usize = 8;

    /// The fix for a damaged file.
    const RESAVE: &str = "save the array again with numpy.save";

    /// A parsed 2-D array.
    #[derive(Clone, Debug, PartialEq)]
    pub struct Array {
        /// `descr` of the header, e.g. `<i8`.
        pub descr: String,
        /// Rows and columns.
        pub shape: [usize; 2],
        /// Values in row-major order, as read (integers exactly, floats as f64).
        values: Values,
    }

    #[derive(Clone, Debug, PartialEq)]
    enum Values {
        Ints(Vec<i128>),
        Floats(Vec<f64>),
    }

    /// The header's length and where the header text starts, from the preamble
    /// (magic, version, length).
    fn preamble(data: &[u8]) -> Result<(usize, usize), String> {
        if data.len() < 10 || data[..6] != *b"\x93NUMPY" {
            return Err(
                "not a .npy file (no \\x93NUMPY magic); save the array with numpy.save".into(),
            );
        }
        match (data[6], data[7]) {
            (1, 0) => Ok((usize::from(u16::from_le_bytes([data[8], data[9]])), 10)),
            (2 | 3, 0) => match data.get(8..12) {
                Some(&[a, b, c, d]) => Ok((
                    usize::try_from(u32::from_le_bytes([a, b, c, d])).unwrap_or(usize::MAX),
                    12,
                )),
                _ => Err(format!("truncated .npy header; {RESAVE}")),
            },
            (major, minor) => Err(format!(
                ".npy format version {major}.{minor} is not supported (1.0 to 3.0 are); {RESAVE}"
            )),
        }
    }

    /// Parses an `.npy` file holding a 2-D numeric array: integer (`i1`..`i8`, `u1`..`u8`,
    /// `b1`) or float (`f4`, `f8`), either byte order, C or Fortran order. Never panics and
    /// allocates at most a small multiple of `data.len()`.
    pub fn parse(data: &[u8]) -> Result<Array, String> {
        let (hlen, start) = preamble(data)?;
        if hlen > MAX_HEADER_LEN {
            return Err(format!(
                "the .npy header claims {hlen} bytes, more than the {MAX_HEADER_LEN} numpy reads; {RESAVE}"
            ));
        }
        let end = start + hlen; // both small: no overflow
        let text = data.get(start..end).ok_or_else(|| {
            format!(
                "truncated .npy header: {} of its {hlen} bytes; {RESAVE}",
                data.len() - start
            )
        })?;
        let mut depth = 0usize;
        for &b in text {
            match b {
                b'(' | b'[' | b'{' => depth += 1,
                b')' | b']' | b'}' => depth = depth.saturating_sub(1),
                _ => {}
            }
            if depth > MAX_HEADER_DEPTH {
                return Err(format!(
                    "malformed .npy header (brackets nested deeper than {MAX_HEADER_DEPTH}); {RESAVE}"
                ));
            }
        }
        // npyz multiplies the shape out itself (wrapping: this workspace builds dependencies
        // without overflow checks); the product used below is computed here, checked.
        let header = NpyHeader::from_reader(&data[..end])
            .map_err(|e| format!("malformed .npy header ({}); {RESAVE}", brief(&e)))?;
        let shape = match header.shape() {
            &[r, c] => [r, c],
            other => {
                return Err(format!(
                    "a {}-D array of shape {other:?}; give a 2-D array [samples, columns] (x.reshape(len(x), -1))",
                    other.len()
                ))
            }
        };
        let dtype = header.dtype();
        let descr = match &dtype {
            DType::Plain(t) => t.to_string(),
            other => other.descr(),
        };
        let unsupported = || {
            format!(
                "dtype {descr:?} is not supported; save integers (int8..int64, uint8..uint64, bool) or floats (float32, float64)"
            )
        };
        let DType::Plain(ty) = &dtype else {
            return Err(unsupported());
        };
        let width = match (ty.type_char(), ty.size_field()) {
            (TypeChar::Int | TypeChar::Uint, w @ (1 | 2 | 4 | 8))
            | (TypeChar::Float, w @ (4 | 8))
            | (TypeChar::Bool, w @ 1) => w,
            _ => return Err(unsupported()),
        };
        let body = &data[end..];
        // Checked against the real data before anything is allocated: a corrupt shape such as
        // (2**61, 1) is an error, not a capacity overflow.
        let need = shape[0]
            .checked_mul(shape[1])
            .and_then(|n| Some((n, n.checked_mul(width)?)));
        let (n, bytes) = match need {
            Some((n, bytes)) if bytes <= body.len() as u64 => (n, bytes),
            _ => {
                let needs = need.map_or("more bytes than a file can hold".into(), |(_, b)| {
                    format!("{b} bytes")
                });
                return Err(format!(
                    "truncated .npy data: shape ({}, {}) of {width}-byte values needs {needs}, {} follow the header; {RESAVE}",
                    shape[0],
                    shape[1],
                    body.len()
                ));
            }
        };
        // n and bytes fit: they are at most body.len(). With no values, a dimension may still
        // be huge, so loops below go over values, never over rows alone.
        let (n, bytes) = (n as usize, bytes as usize);
        let shape = match shape.map(usize::try_from) {
            [Ok(r), Ok(c)] => [r, c],
            _ => {
                return Err(format!(
                    "shape ({}, {}) is larger than this machine addresses; {RESAVE}",
                    shape[0], shape[1]
                ))
            }
        };
        let order = header.order();
        let file = NpyFile::with_header(header, &body[..bytes]);
        let values = match (ty.type_char(), width) {
            (TypeChar::Int, 1) => Values::Ints(read_all(file, n, |v: i8| v.into())?),
            (TypeChar::Int, 2) => Values::Ints(read_all(file, n, |v: i16| v.into())?),
            (TypeChar::Int, 4) => Values::Ints(read_all(file, n, |v: i32| v.into())?),
            (TypeChar::Int, _) => Values::Ints(read_all(file, n, |v: i64| v.into())?),
            (TypeChar::Uint, 1) => Values::Ints(read_all(file, n, |v: u8| v.into())?),
            (TypeChar::Uint, 2) => Values::Ints(read_all(file, n, |v: u16| v.into())?),
            (TypeChar::Uint, 4) => Values::Ints(read_all(file, n, |v: u32| v.into())?),
            (TypeChar::Uint, _) => Values::Ints(read_all(file, n, |v: u64| v.into())?),
            (TypeChar::Bool, _) => Values::Ints(read_all(file, n, |v: bool| v.into())?),
            (TypeChar::Float, 4) => Values::Floats(read_all(file, n, |v: f32| v.into())?),
            _ => Values::Floats(read_all(file, n, |v: f64| v)?),
        };
        let values = match (order, values) {
            (Order::C, v) => v,
            (Order::Fortran, Values::Ints(v)) => Values::Ints(c_order(&v, shape)),
            (Order::Fortran, Values::Floats(v)) => Values::Floats(c_order(&v, shape)),
        };
        Ok(Array {
            descr,
            shape,
            values,
        })
    }

    /// Reads the `n` values of `file` (whose data holds exactly `n`), converted by `f`.
    fn read_all<T: npyz::Deserialize, U>(
        file: NpyFile<&[u8]>,
        n: usize,
        f: impl Fn(T) -> U,
    ) -> Result<Vec<U>, String> {
        let reader = file
            .data::<T>()
            .map_err(|e| format!("cannot read the .npy data ({}); {RESAVE}", brief(&e)))?;
        let mut out = Vec::with_capacity(n);
        for (i, v) in reader.take(n).enumerate() {
            out.push(f(v.map_err(|e| {
                format!("value {i} of the .npy data: {}; {RESAVE}", brief(&e))
            })?));
        }
        Ok(out)
    }

    /// A parser's message on one short line (pest's are several lines and quote the header).
    fn brief(e: &dyn std::fmt::Display) -> String {
        let words: Vec<String> = e.to_string().split_whitespace().map(String::from).collect();
        super::shorten(&words.join(" "), 160)
    }

    /// Fortran-order (column-major) values of a `[rows, columns]` array in C order.
    fn c_order<T: Copy>(v: &[T], [rows, cols]: [usize; 2]) -> Vec<T> {
        if v.is_empty() {
            return Vec::new(); // (2**63, 0) must not loop over its rows
        }
        (0..rows)
            .flat_map(|r| (0..cols).filter_map(move |c| v.get(c * rows + r).copied()))
            .collect()
    }

    impl Array {
        fn rows<T: Clone>(&self, v: Vec<T>) -> Vec<Vec<T>> {
            v.chunks(self.shape[1].max(1))
                .take(self.shape[0])
                .map(|c| c.to_vec())
                .collect()
        }

        /// Integer rows; fails for float arrays and values beyond `i64`.
        pub fn ints(&self) -> Result<Vec<Vec<i64>>, String> {
            match &self.values {
                Values::Floats(_) => Err(format!(
                    "dtype {:?} is a float type, but this program takes integers; save the array with an integer dtype (x.astype(numpy.int64))",
                    self.descr
                )),
                Values::Ints(v) => {
                    let mut out = Vec::with_capacity(v.len());
                    for (i, &x) in v.iter().enumerate() {
                        out.push(i64::try_from(x).map_err(|_| {
                            format!(
                                "element [{}, {}] = {x} does not fit a 64-bit integer; give values up to {}",
                                i / self.shape[1].max(1),
                                i % self.shape[1].max(1),
                                i64::MAX
                            )
                        })?);
                    }
                    Ok(self.rows(out))
                }
            }
        }

        /// Float rows (integers converted); fails on NaN and infinities.
        pub fn floats(&self) -> Result<Vec<Vec<f64>>, String> {
            let v: Vec<f64> = match &self.values {
                Values::Ints(v) => v.iter().map(|&x| x as f64).collect(),
                Values::Floats(v) => v.clone(),
            };
            if let Some((i, x)) = v.iter().enumerate().find(|(_, x)| !x.is_finite()) {
                return Err(format!(
                    "element [{}, {}] is {x}; give finite numbers",
                    i / self.shape[1].max(1),
                    i % self.shape[1].max(1),
                ));
            }
            Ok(self.rows(v))
        }
    }

    /// Writes a little-endian `<i8` (when `ints` is given) or `<f8` 2-D array in C order
    /// (used by tests and examples).
    ///
    /// # Panics
    ///
    /// If the values given are not `rows * cols` (a bug of the caller).
    pub fn write_2d(
        rows: usize,
        cols: usize,
        ints: Option<&[i64]>,
        floats: Option<&[f64]>,
    ) -> Vec<u8> {
        fn write<T: npyz::Serialize>(shape: [usize; 2], descr: &str, v: &[T]) -> Vec<u8> {
            let mut out = Vec::new();
            let dtype = DType::Plain(descr.parse().expect("a valid type string"));
            npyz::WriteOptions::<T>::new()
                .dtype(dtype)
                .shape(&[shape[0] as u64, shape[1] as u64])
                .writer(&mut out)
                .begin_nd()
                .and_then(|mut w| {
                    v.iter().try_for_each(|x| w.push(x))?;
                    w.finish()
                })
                .expect("write_2d: rows * cols values");
            out
        }
        match (ints, floats) {
            (Some(v), _) => write([rows, cols], "<i8", v),
            (None, v) => write([rows, cols], "<f8", v.unwrap_or(&[])),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn tmp(name: &str, data: &[u8]) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("veil-cli-io-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join(name);
        std::fs::write(&p, data).unwrap();
        p
    }

    /// An `.npy` file with this header dictionary text (version 1) and body.
    fn npy_file(dict: &str, body: &[u8]) -> Vec<u8> {
        let h = format!("{dict}\n");
        let mut f = b"\x93NUMPY\x01\x00".to_vec();
        f.extend_from_slice(&(h.len() as u16).to_le_bytes());
        f.extend_from_slice(h.as_bytes());
        f.extend_from_slice(body);
        f
    }

    fn dict(descr: &str, fortran: bool, shape: &str) -> String {
        let f = if fortran { "True" } else { "False" };
        format!("{{'descr': '{descr}', 'fortran_order': {f}, 'shape': {shape}, }}")
    }

    #[test]
    fn csv_tables() {
        let p = tmp("a.csv", b"# samples\nx0,x1, k\n1,2,3\n\n 4 ,5,6\n");
        let t = read_ints(&p).unwrap();
        assert_eq!(t.rows, vec![vec![1, 2, 3], vec![4, 5, 6]]);
        assert_eq!(t.at(1, 2), "line 5, column 3");
        let e = t.expect_columns(4, "x: 4 values").unwrap_err().0;
        assert!(
            e.ends_with(
                "a.csv: line 3 has 3 column(s), expected 4 (x: 4 values); give one row per sample"
            ),
            "{e}"
        );
        let p = tmp("b.csv", b"1,2\n3,1.5\n");
        let e = read_ints(&p).unwrap_err().0;
        assert!(e.ends_with("b.csv: line 2, column 2: `1.5` is not an integer; this program takes integer inputs: give whole numbers"), "{e}");
        assert_eq!(read_floats(&p).unwrap().rows[1], vec![3.0, 1.5]);
        let p = tmp("c.csv", b"1,2\n3,abc\n");
        let e = read_floats(&p).unwrap_err().0;
        assert!(
            e.contains("c.csv: line 2, column 2: `abc` is not a finite number"),
            "{e}"
        );
        let e = read_ints(&tmp("d.csv", b"\xff\xfe")).unwrap_err().0;
        assert!(e.contains("not a text file"), "{e}");
    }

    #[test]
    fn csv_comments_blanks_and_ragged_rows() {
        let t = ints_from_bytes(
            Path::new("e.csv"),
            b"  # indented comment\n   \n1, 2\r\n#x\n3\n\t\n5,6,7\n",
        )
        .unwrap();
        assert_eq!(t.rows, vec![vec![1, 2], vec![3], vec![5, 6, 7]]);
        assert_eq!(t.row_at(1), "line 5");
        assert_eq!(t.row_at(2), "line 7");
        let e = ints_from_bytes(Path::new("f.csv"), b"1,2\n3,\"x\ny\"\n")
            .unwrap_err()
            .0;
        assert_eq!(
            e,
            "f.csv: line 2, column 2: `x\\ny` is not a number; give integers, comma-separated"
        );
        let e = ints_from_bytes(Path::new("q.csv"), b"1,\"2\"\n#c\n\n3,\"4\n\"\n#d\n5,x\n")
            .unwrap_err()
            .0;
        assert!(e.starts_with("q.csv: line 7, column 2: `x`"), "{e}");
        let long = format!("1\n{}\n", "z".repeat(5000));
        let e = ints_from_bytes(Path::new("g.csv"), long.as_bytes())
            .unwrap_err()
            .0;
        assert!(e.len() < 200 && e.contains("line 2, column 1"), "{e}");
    }

    #[test]
    fn npy_arrays() {
        let b = npy::write_2d(2, 3, Some(&[1, -2, 3, 4, 5, 6]), None);
        let a = npy::parse(&b).unwrap();
        assert_eq!(a.shape, [2, 3]);
        assert_eq!(a.descr, "<i8");
        assert_eq!(a.ints().unwrap(), vec![vec![1, -2, 3], vec![4, 5, 6]]);
        assert_eq!(a.floats().unwrap()[0], vec![1.0, -2.0, 3.0]);
        let b = npy::write_2d(1, 2, None, Some(&[0.5, 2.0]));
        let a = npy::parse(&b).unwrap();
        assert_eq!(a.floats().unwrap(), vec![vec![0.5, 2.0]]);
        assert!(a.ints().unwrap_err().contains("float type"));
        // Fortran order, big-endian int16.
        let body: Vec<u8> = [1i16, -3, 2, 4]
            .iter()
            .flat_map(|v| v.to_be_bytes())
            .collect();
        let f = npy_file(&dict(">i2", true, "(2, 2)"), &body);
        assert_eq!(
            npy::parse(&f).unwrap().ints().unwrap(),
            vec![vec![1, 2], vec![-3, 4]]
        );
        let g = npy_file(&dict(">i2", true, "(4,)"), &body);
        assert!(npy::parse(&g).unwrap_err().contains("1-D array"));
        assert!(npy::parse(&f[..f.len() - 1])
            .unwrap_err()
            .contains("truncated"));
        assert!(npy::parse(b"1,2,3\n4,5,6\n")
            .unwrap_err()
            .contains("not a .npy file"));
    }

    #[test]
    fn npy_dtypes() {
        let ints = |descr: &str, body: &[u8]| {
            npy::parse(&npy_file(&dict(descr, false, "(1, 2)"), body))
                .and_then(|a| a.ints())
                .map(|r| r[0].clone())
        };
        assert_eq!(ints("|i1", &[0xff, 7]).unwrap(), vec![-1, 7]);
        assert_eq!(ints("|u1", &[0xff, 7]).unwrap(), vec![255, 7]);
        assert_eq!(ints("|b1", &[1, 0]).unwrap(), vec![1, 0]);
        assert!(ints("|b1", &[2, 0]).unwrap_err().contains("value 0"));
        assert_eq!(ints("<u2", &[1, 2, 3, 4]).unwrap(), vec![0x201, 0x403]);
        assert_eq!(ints(">u2", &[1, 2, 3, 4]).unwrap(), vec![0x102, 0x304]);
        let body: Vec<u8> = [-5i32, 6].iter().flat_map(|v| v.to_le_bytes()).collect();
        assert_eq!(ints("<i4", &body).unwrap(), vec![-5, 6]);
        let body: Vec<u8> = [u64::MAX, 6].iter().flat_map(|v| v.to_le_bytes()).collect();
        assert!(ints("<u8", &body).unwrap_err().contains("does not fit"));
        let body: Vec<u8> = [1.5f32, -2.0]
            .iter()
            .flat_map(|v| v.to_be_bytes())
            .collect();
        let a = npy::parse(&npy_file(&dict(">f4", false, "(1, 2)"), &body)).unwrap();
        assert_eq!(a.floats().unwrap(), vec![vec![1.5, -2.0]]);
        for bad in ["<U2", "<c16", "<f2", "<M8[s]", "|O"] {
            let e = npy::parse(&npy_file(&dict(bad, false, "(1, 1)"), &[0; 64])).unwrap_err();
            assert!(
                e.contains("not supported") || e.contains("invalid type string"),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn npy_hostile_headers() {
        // The shape product overflows usize, or is far beyond the data.
        for shape in [
            "(2305843009213693952, 1)",
            "(4294967296, 4294967296)",
            "(18446744073709551615, 2)",
            "(1000000, 1000000)",
        ] {
            let e = npy::parse(&npy_file(&dict("<i8", false, shape), &[0; 8])).unwrap_err();
            assert!(e.starts_with("truncated .npy data"), "{shape}: {e}");
        }
        // No values, but a huge dimension: no loop over it (Fortran order transposes).
        for fortran in [false, true] {
            let shape = "(9223372036854775808, 0)";
            let a = npy::parse(&npy_file(&dict("<i8", fortran, shape), &[])).unwrap();
            assert!(a.ints().unwrap().is_empty() && a.floats().unwrap().is_empty());
            let shape = "(0, 9223372036854775808)";
            let a = npy::parse(&npy_file(&dict("<f8", fortran, shape), &[])).unwrap();
            assert!(a.ints().is_err() && a.floats().unwrap().is_empty());
        }
        let long = format!("1\n{}\n", "9".repeat(500));
        let e = ints_from_bytes(Path::new("n.csv"), long.as_bytes())
            .unwrap_err()
            .0;
        assert!(e.contains("is not an integer"), "{e}");
        let e = npy::parse(&npy_file(&dict("<i8", false, "(-1, 2)"), &[0; 8])).unwrap_err();
        assert!(e.contains("malformed .npy header"), "{e}");
        // A version-2 header that claims 4 GiB.
        let mut f = b"\x93NUMPY\x02\x00\xff\xff\xff\xff{}".to_vec();
        assert!(npy::parse(&f).unwrap_err().contains("more than the 10000"));
        f[8..12].copy_from_slice(&100u32.to_le_bytes());
        assert!(npy::parse(&f)
            .unwrap_err()
            .contains("truncated .npy header"));
        let nested = format!("{}1{}", "(".repeat(1000), ")".repeat(1000));
        let e = npy::parse(&npy_file(&dict("<i8", false, &nested), &[])).unwrap_err();
        assert!(e.contains("nested deeper"), "{e}");
        let e = npy::parse(&npy_file("{'descr': '<i8', oops", &[])).unwrap_err();
        assert!(
            e.starts_with("malformed .npy header") && !e.contains('\n'),
            "{e}"
        );
        assert!(npy::parse(b"\x93NUMPY\x04\x00\x00\x00")
            .unwrap_err()
            .contains("version 4.0"));
    }

    #[test]
    fn split_row_never_panics() {
        let t = ints_from_bytes(Path::new("h.csv"), b"1,2\n").unwrap();
        let specs: Vec<IoSpec> = Vec::new();
        assert!(split_row(&t, 0, &specs).unwrap().is_empty());
        assert!(split_row(&t, 7, &specs).is_err());
    }

    /// Valid `.npy` files of every supported dtype and order, small shapes.
    fn valid_npy() -> impl Strategy<Value = Vec<u8>> {
        let descrs = prop::sample::select(vec![
            "|i1", "|u1", "|b1", "<i2", ">i2", "<u2", ">u4", "<i4", "<i8", ">u8", "<f4", ">f8",
        ]);
        (descrs, 0usize..4, 0usize..4, any::<bool>(), any::<u64>()).prop_map(
            |(descr, r, c, fortran, seed)| {
                let width: usize = descr[2..].parse().unwrap();
                let body: Vec<u8> = (0..r * c * width)
                    .map(|i| match descr {
                        "|b1" => (seed >> (i % 64)) as u8 & 1,
                        _ => (seed.rotate_left(i as u32 * 7) as u8) & 0x3f,
                    })
                    .collect();
                npy_file(&dict(descr, fortran, &format!("({r}, {c})")), &body)
            },
        )
    }

    /// Mutations: overwritten bytes, then a truncation or appended bytes.
    fn mutate(base: impl Strategy<Value = Vec<u8>>) -> impl Strategy<Value = Vec<u8>> {
        (
            base,
            prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..6),
            prop_oneof![Just(None), any::<prop::sample::Index>().prop_map(Some)],
            prop::collection::vec(any::<u8>(), 0..16),
        )
            .prop_map(|(mut f, edits, cut, tail)| {
                if !f.is_empty() {
                    for (i, b) in edits {
                        let i = i.index(f.len());
                        f[i] = b;
                    }
                }
                match cut {
                    Some(i) if !f.is_empty() => f.truncate(i.index(f.len())),
                    _ => f.extend_from_slice(&tail),
                }
                f
            })
    }

    /// Headers with arbitrary shapes (huge, overflowing, any rank) and dtypes.
    fn hostile_header() -> impl Strategy<Value = Vec<u8>> {
        let dim = prop_oneof![
            0u64..5,
            any::<u64>(),
            Just(1u64 << 61),
            Just(u64::MAX),
            Just(1u64 << 32)
        ];
        let descr = prop::sample::select(vec![
            "<i8",
            ">f8",
            "|b1",
            "<u2",
            "<U9",
            "|O",
            "<c16",
            "i8",
            "<i16",
            "<V9999999999",
        ]);
        (
            descr,
            any::<bool>(),
            prop::collection::vec(dim, 0..4),
            prop::collection::vec(any::<u8>(), 0..64),
        )
            .prop_map(|(descr, fortran, dims, body)| {
                let dims: Vec<String> = dims.iter().map(u64::to_string).collect();
                let shape = format!("({},)", dims.join(", "));
                npy_file(&dict(descr, fortran, &shape), &body)
            })
    }

    /// A valid CSV table, with comments, blank lines and a header.
    fn valid_csv() -> impl Strategy<Value = Vec<u8>> {
        prop::collection::vec(prop::collection::vec(-99i64..99, 1..4), 0..5).prop_map(|rows| {
            let mut s = String::from("# a comment\nx,y, z\n");
            for r in rows {
                let cells: Vec<String> = r.iter().map(i64::to_string).collect();
                s.push_str(&cells.join(", "));
                s.push_str("\n\n");
            }
            s.into_bytes()
        })
    }

    /// Parses `data` as both kinds of table under both names: must not panic, and errors
    /// must be one line.
    fn all_readers(data: &[u8]) -> Result<(), TestCaseError> {
        for name in ["fuzz.npy", "fuzz.csv"] {
            let path = Path::new(name);
            if let Err(e) = ints_from_bytes(path, data) {
                prop_assert!(!e.0.contains('\n'), "{}", e.0);
            }
            if let Err(e) = floats_from_bytes(path, data) {
                prop_assert!(!e.0.contains('\n'), "{}", e.0);
            }
        }
        Ok(())
    }

    // proptest's default of 256 cases per property runs in about a second; for a longer
    // fuzzing run set PROPTEST_CASES, e.g. PROPTEST_CASES=100000.
    proptest! {
        #[test]
        fn fuzz_random_bytes(data in prop::collection::vec(any::<u8>(), 0..300)) {
            all_readers(&data)?;
            let mut npy = b"\x93NUMPY\x01\x00".to_vec();
            npy.extend_from_slice(&data);
            all_readers(&npy)?;
        }

        #[test]
        fn fuzz_mutated_npy(data in mutate(valid_npy())) {
            all_readers(&data)?;
        }

        #[test]
        fn fuzz_hostile_npy_headers(data in mutate(hostile_header())) {
            all_readers(&data)?;
        }

        #[test]
        fn fuzz_mutated_csv(data in mutate(valid_csv())) {
            all_readers(&data)?;
        }

        #[test]
        fn fuzz_csv_text(text in "[0-9#,\n\r\t .eE+\"a-z-]{0,200}") {
            all_readers(text.as_bytes())?;
        }

        #[test]
        fn valid_npy_round_trips(r in 0usize..5, c in 0usize..5, seed in any::<i64>()) {
            let v: Vec<i64> = (0..r * c).map(|i| seed.wrapping_mul(i as i64 + 1)).collect();
            let a = npy::parse(&npy::write_2d(r, c, Some(&v), None)).unwrap();
            prop_assert_eq!(a.shape, [r, c]);
            let flat: Vec<i64> = a.ints().unwrap().concat();
            prop_assert_eq!(flat, if c == 0 { Vec::new() } else { v });
        }
    }
}
