//! Shared file handling of the subcommands: reading and writing files with one-line errors,
//! loading veil artifacts and keys (checking their kind first), reading sample tables from CSV
//! and NPY files, and progress bars.
//!
//! Sample tables: one row per sample. For a `.veil` program the row holds every input
//! flattened (row-major) in declaration order; for an ML model it holds the float features.
//!
//! - CSV: comma-separated, blank lines and lines starting with `#` ignored; a first row with
//!   no number in it is a header and skipped.
//! - NPY: a 2-D array `[samples, columns]`, integer (`i1`..`i8`, `u1`..`u8`, `b1`) or float
//!   (`f4`, `f8`, for ML models only), either byte order, C or Fortran order.

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

/// Writes a whole file (creating its folder); `secret` files are made readable by their owner
/// only (on Unix).
pub fn write(path: &Path, data: &[u8], secret: bool) -> Result<(), CliError> {
    let fail = |e: std::io::Error| {
        CliError(format!(
            "cannot write {}: {}; check that the folder is writable",
            path.display(),
            io_reason(&e)
        ))
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(fail)?;
    }
    #[cfg(unix)]
    if secret {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(path)
            .map_err(fail)?;
        return f.write_all(data).map_err(fail);
    }
    let _ = secret;
    std::fs::write(path, data).map_err(fail)
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
    match e {
        veil_runtime::RuntimeError::Serial(source) => match source {
            veil_ir::serial::SerialError::Kind { found, .. } => ArtifactError::WrongKind {
                found,
                expected: kind,
            },
            source => ArtifactError::Serial {
                expected: kind,
                source,
            },
        },
        e => ArtifactError::Runtime(e),
    }
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
}

impl<T> Table<T> {
    /// Where cell `(r, c)` is, for messages: `line L, column C` (CSV, 1-based) or
    /// `element [r, c]` (NPY, 0-based like numpy).
    pub fn at(&self, r: usize, c: usize) -> String {
        match self.lines.get(r) {
            Some(l) => format!("line {l}, column {}", c + 1),
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

/// Reads a sample table from a `.csv` or `.npy` file: `from_npy` converts an NPY array,
/// `cell` parses one CSV cell (its error message gets the file, line and column prefixed).
fn read_table<T>(
    path: &Path,
    from_npy: impl Fn(&npy::Array) -> Result<Vec<Vec<T>>, String>,
    cell: impl Fn(&str) -> Result<T, String>,
) -> Result<Table<T>, CliError> {
    let data = read(path)?;
    if is_npy(path) {
        let a = npy::parse(&data).map_err(|e| CliError(format!("{}: {e}", path.display())))?;
        let rows = from_npy(&a).map_err(|e| CliError(format!("{}: {e}", path.display())))?;
        return Ok(Table {
            path: path.into(),
            rows,
            lines: Vec::new(),
        });
    }
    let (cells, lines) = csv_cells(path, &data)?;
    let mut rows = Vec::with_capacity(cells.len());
    for (r, row) in cells.iter().enumerate() {
        let mut out = Vec::with_capacity(row.len());
        for (c, s) in row.iter().enumerate() {
            out.push(cell(s).map_err(|e| {
                CliError(format!(
                    "{}: line {}, column {}: {e}",
                    path.display(),
                    lines[r],
                    c + 1
                ))
            })?);
        }
        rows.push(out);
    }
    Ok(Table {
        path: path.into(),
        rows,
        lines,
    })
}

/// Reads integer samples from a `.csv` or `.npy` file.
pub fn read_ints(path: &Path) -> Result<IntTable, CliError> {
    read_table(path, npy::Array::ints, |s| {
        s.parse::<i64>().map_err(|_| {
            if s.parse::<f64>().is_ok() {
                format!(
                    "`{s}` is not an integer; this program takes integer inputs: give whole numbers"
                )
            } else {
                format!("`{s}` is not a number; give integers, comma-separated")
            }
        })
    })
}

/// Reads float samples from a `.csv` or `.npy` file.
pub fn read_floats(path: &Path) -> Result<FloatTable, CliError> {
    read_table(path, npy::Array::floats, |s| match s.parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(v),
        _ => Err(format!(
            "`{s}` is not a finite number; give numbers, comma-separated"
        )),
    })
}

/// Splits CSV text into trimmed cells per row, with 1-based line numbers; skips blank lines,
/// `#` comments and a header row (a first row without any number).
fn csv_cells(path: &Path, data: &[u8]) -> Result<(Vec<Vec<String>>, Vec<usize>), CliError> {
    let text = std::str::from_utf8(data).map_err(|_| {
        CliError(format!(
            "{}: not a text file; give a CSV file (one sample per line) or a .npy array",
            path.display()
        ))
    })?;
    let mut rows = Vec::new();
    let mut lines = Vec::new();
    let mut first = true;
    for (i, line) in text.lines().enumerate() {
        let t = line.trim();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        let cells: Vec<String> = t.split(',').map(|c| c.trim().to_string()).collect();
        if std::mem::take(&mut first) && cells.iter().all(|c| c.parse::<f64>().is_err()) {
            continue; // a header
        }
        rows.push(cells);
        lines.push(i + 1);
    }
    Ok((rows, lines))
}

/// Splits one integer row into one tensor per input (`specs` in order), checking every value
/// against its input's type; errors name the file, line and column.
pub fn split_row(
    table: &IntTable,
    r: usize,
    specs: &[IoSpec],
) -> Result<Vec<Tensor<i64>>, CliError> {
    let row = &table.rows[r];
    let mut col = 0;
    let mut out = Vec::with_capacity(specs.len());
    for s in specs {
        let n = s.ty.numel();
        let vals = &row[col..col + n];
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
    table.expect_columns(cols.iter().map(|c| c.1).sum(), &layout(&cols))?;
    (0..table.rows.len())
        .map(|r| split_row(table, r, specs))
        .collect()
}

/// A minimal reader of NumPy's `.npy` format (version 1 to 3).
pub mod npy {
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

    fn field<'a>(header: &'a str, key: &str) -> Result<&'a str, String> {
        let k = format!("'{key}'");
        let i = header
            .find(&k)
            .ok_or_else(|| format!("the .npy header has no {k}"))?;
        let rest = header[i + k.len()..].trim_start();
        rest.strip_prefix(':')
            .map(str::trim_start)
            .ok_or_else(|| format!("malformed .npy header near {k}"))
    }

    /// Parses an `.npy` file holding a 2-D numeric array.
    pub fn parse(data: &[u8]) -> Result<Array, String> {
        if data.len() < 10 || &data[..6] != b"\x93NUMPY" {
            return Err(
                "not a .npy file (no \\x93NUMPY magic); save the array with numpy.save".into(),
            );
        }
        let (hlen, start) = match data[6] {
            1 => (u16::from_le_bytes([data[8], data[9]]) as usize, 10),
            2 | 3 if data.len() >= 12 => (
                u32::from_le_bytes([data[8], data[9], data[10], data[11]]) as usize,
                12,
            ),
            v => {
                return Err(format!(
                    ".npy format version {v} is not supported (1 to 3 are)"
                ))
            }
        };
        let header = data
            .get(start..start + hlen)
            .and_then(|h| std::str::from_utf8(h).ok())
            .ok_or("the .npy header is truncated or not text")?;
        let descr_v = field(header, "descr")?;
        let descr = descr_v
            .strip_prefix('\'')
            .and_then(|s| s.split('\'').next())
            .ok_or("malformed 'descr' in the .npy header")?
            .to_string();
        let fortran = field(header, "fortran_order")?.starts_with("True");
        let shape_s = field(header, "shape")?;
        let shape_s = shape_s
            .strip_prefix('(')
            .and_then(|s| s.split(')').next())
            .ok_or("malformed 'shape' in the .npy header")?;
        let dims: Vec<usize> = shape_s
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| s.trim_end_matches('L').parse::<usize>())
            .collect::<Result<_, _>>()
            .map_err(|_| "malformed 'shape' in the .npy header")?;
        let shape = match dims.as_slice() {
            [r, c] => [*r, *c],
            other => {
                return Err(format!(
                    "a {}-D array of shape {other:?}; give a 2-D array [samples, columns] (x.reshape(len(x), -1))",
                    other.len()
                ))
            }
        };
        let (order, ty) = descr.split_at(1.min(descr.len()));
        let big = order == ">";
        let (kind, width) = ty.split_at(1.min(ty.len()));
        let width: usize = width
            .parse()
            .map_err(|_| format!("dtype {descr:?} is not supported; save integers or floats"))?;
        let body = &data[start + hlen..];
        let n = shape[0] * shape[1];
        if body.len() < n * width {
            return Err(format!(
                "truncated .npy data: {} bytes for {n} values of {width} bytes",
                body.len()
            ));
        }
        let word = |i: usize| -> [u8; 8] {
            let mut b = [0u8; 8];
            let src = &body[i * width..(i + 1) * width];
            if big {
                for (j, x) in src.iter().rev().enumerate() {
                    b[j] = *x;
                }
            } else {
                b[..width].copy_from_slice(src);
            }
            b
        };
        let sext = |b: [u8; 8]| -> i128 {
            let v = u64::from_le_bytes(b);
            let shift = 64 - 8 * width as u32;
            (((v << shift) as i64) >> shift) as i128
        };
        let mut values = match (kind, width) {
            ("i", 1 | 2 | 4 | 8) => Values::Ints((0..n).map(|i| sext(word(i))).collect()),
            ("u" | "b", 1 | 2 | 4 | 8) => {
                Values::Ints((0..n).map(|i| u64::from_le_bytes(word(i)) as i128).collect())
            }
            ("f", 8) => Values::Floats((0..n).map(|i| f64::from_le_bytes(word(i))).collect()),
            ("f", 4) => Values::Floats(
                (0..n)
                    .map(|i| {
                        let b = word(i);
                        f32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f64
                    })
                    .collect(),
            ),
            _ => {
                return Err(format!(
                    "dtype {descr:?} is not supported; save integers (int8..int64, uint8..uint64) or floats (float32, float64)"
                ))
            }
        };
        if fortran {
            let [r, c] = shape;
            let t = |i: usize| (i % c) * r + i / c;
            values = match values {
                Values::Ints(v) => Values::Ints((0..n).map(|i| v[t(i)]).collect()),
                Values::Floats(v) => Values::Floats((0..n).map(|i| v[t(i)]).collect()),
            };
        }
        Ok(Array {
            descr,
            shape,
            values,
        })
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
                                "element [{}, {}] = {x} does not fit a 64-bit integer",
                                i / self.shape[1].max(1),
                                i % self.shape[1].max(1)
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
            if let Some(i) = v.iter().position(|x| !x.is_finite()) {
                return Err(format!(
                    "element [{}, {}] is {}; give finite numbers",
                    i / self.shape[1].max(1),
                    i % self.shape[1].max(1),
                    v[i]
                ));
            }
            Ok(self.rows(v))
        }
    }

    /// Writes a little-endian `<i8` or `<f8` 2-D array (used by tests and examples).
    pub fn write_2d(
        rows: usize,
        cols: usize,
        ints: Option<&[i64]>,
        floats: Option<&[f64]>,
    ) -> Vec<u8> {
        let descr = if ints.is_some() { "<i8" } else { "<f8" };
        let mut h =
            format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': ({rows}, {cols}), }}");
        while (10 + h.len() + 1) % 64 != 0 {
            h.push(' ');
        }
        h.push('\n');
        let mut out = b"\x93NUMPY\x01\x00".to_vec();
        out.extend_from_slice(&(h.len() as u16).to_le_bytes());
        out.extend_from_slice(h.as_bytes());
        if let Some(v) = ints {
            v.iter()
                .for_each(|x| out.extend_from_slice(&x.to_le_bytes()));
        }
        if let Some(v) = floats {
            v.iter()
                .for_each(|x| out.extend_from_slice(&x.to_le_bytes()));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str, data: &[u8]) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("veil-cli-io-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join(name);
        std::fs::write(&p, data).unwrap();
        p
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
    fn npy_arrays() {
        let b = npy::write_2d(2, 3, Some(&[1, -2, 3, 4, 5, 6]), None);
        let a = npy::parse(&b).unwrap();
        assert_eq!(a.shape, [2, 3]);
        assert_eq!(a.ints().unwrap(), vec![vec![1, -2, 3], vec![4, 5, 6]]);
        assert_eq!(a.floats().unwrap()[0], vec![1.0, -2.0, 3.0]);
        let b = npy::write_2d(1, 2, None, Some(&[0.5, 2.0]));
        let a = npy::parse(&b).unwrap();
        assert_eq!(a.floats().unwrap(), vec![vec![0.5, 2.0]]);
        assert!(a.ints().unwrap_err().contains("float type"));
        // Fortran order, big-endian int16, 1-D.
        let mut h = "{'descr': '>i2', 'fortran_order': True, 'shape': (2, 2), }".to_string();
        h.push('\n');
        let mut f = b"\x93NUMPY\x01\x00".to_vec();
        f.extend_from_slice(&(h.len() as u16).to_le_bytes());
        f.extend_from_slice(h.as_bytes());
        for v in [1i16, -3, 2, 4] {
            f.extend_from_slice(&v.to_be_bytes());
        }
        assert_eq!(
            npy::parse(&f).unwrap().ints().unwrap(),
            vec![vec![1, 2], vec![-3, 4]]
        );
        let one_d = String::from_utf8_lossy(&f).replace("(2, 2)", "(4,)  ");
        let mut g = f.clone();
        g[10..10 + h.len()].copy_from_slice(&one_d.as_bytes()[10..10 + h.len()]);
        assert!(npy::parse(&g).unwrap_err().contains("1-D array"));
        assert!(npy::parse(&f[..f.len() - 1])
            .unwrap_err()
            .contains("truncated"));
        assert!(npy::parse(b"1,2,3\n4,5,6\n")
            .unwrap_err()
            .contains("not a .npy file"));
    }
}
