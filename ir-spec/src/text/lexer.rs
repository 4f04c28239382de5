//! Tokens of the text form, with their `line:col` positions.
//!
//! Newlines are tokens (one op per line); `;` starts a comment that runs to the end of the line.
//! Identifiers may contain `.` (`tlu.multi`); `%name` and `@name` are value and pool
//! references; numbers keep their source text and are converted where their type is known.

use super::ParseError;

/// A token kind; slices borrow from the source.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Tok<'a> {
    /// `[A-Za-z_][A-Za-z0-9_.]*`
    Ident(&'a str),
    /// `%name`: a value reference (the name without `%`).
    Value(&'a str),
    /// `@name`: a table, parameter set or key reference (the name without `@`).
    At(&'a str),
    /// `-?digits(.digits)?([eE][+-]?digits)?`, as written.
    Number(&'a str),
    /// A double-quoted string, escapes resolved.
    Str(String),
    /// One punctuation character: `= , : [ ] < > { } / ^ -`.
    Punct(char),
    /// End of a line.
    Newline,
    /// End of the input.
    Eof,
}

impl Tok<'_> {
    /// How the token reads in an error message.
    pub(crate) fn describe(&self) -> String {
        match self {
            Tok::Ident(s) => format!("'{s}'"),
            Tok::Value(s) => format!("'%{s}'"),
            Tok::At(s) => format!("'@{s}'"),
            Tok::Number(s) => format!("number {s}"),
            Tok::Str(s) => format!("string {s:?}"),
            Tok::Punct(c) => format!("'{c}'"),
            Tok::Newline => "end of line".into(),
            Tok::Eof => "end of file".into(),
        }
    }
}

/// A token and where it starts (1-based line and column, columns count characters).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Token<'a> {
    pub tok: Tok<'a>,
    pub line: usize,
    pub col: usize,
}

fn is_ident_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}

fn is_ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '.'
}

/// Splits `src` into tokens, ending with [`Tok::Eof`].
pub(crate) fn lex(src: &str) -> Result<Vec<Token<'_>>, ParseError> {
    let mut out = Vec::new();
    let mut it = src.char_indices().peekable();
    let (mut line, mut col) = (1usize, 1usize);
    // Byte offset just past the char at `i`.
    let end_of = |i: usize, c: char| i + c.len_utf8();
    while let Some(&(i, c)) = it.peek() {
        let (tl, tc) = (line, col);
        match c {
            '\n' => {
                it.next();
                out.push(Token {
                    tok: Tok::Newline,
                    line: tl,
                    col: tc,
                });
                line += 1;
                col = 1;
            }
            ' ' | '\t' | '\r' => {
                it.next();
                col += 1;
            }
            ';' => {
                while let Some(&(_, c)) = it.peek() {
                    if c == '\n' {
                        break;
                    }
                    it.next();
                    col += 1;
                }
            }
            '%' | '@' => {
                it.next();
                col += 1;
                let start = end_of(i, c);
                let mut end = start;
                while let Some(&(j, d)) = it.peek() {
                    if !is_ident_char(d) {
                        break;
                    }
                    it.next();
                    col += 1;
                    end = end_of(j, d);
                }
                if end == start {
                    return Err(ParseError::new(
                        tl,
                        tc,
                        format!("expected a name after '{c}'"),
                    ));
                }
                let name = &src[start..end];
                out.push(Token {
                    tok: if c == '%' {
                        Tok::Value(name)
                    } else {
                        Tok::At(name)
                    },
                    line: tl,
                    col: tc,
                });
            }
            '"' => {
                it.next();
                col += 1;
                let mut s = String::new();
                loop {
                    let Some((_, d)) = it.next() else {
                        return Err(ParseError::new(tl, tc, "unterminated string"));
                    };
                    col += 1;
                    match d {
                        '"' => break,
                        '\n' => return Err(ParseError::new(tl, tc, "unterminated string")),
                        '\\' => {
                            let Some((_, e)) = it.next() else {
                                return Err(ParseError::new(tl, tc, "unterminated string"));
                            };
                            col += 1;
                            match e {
                                'n' => s.push('\n'),
                                't' => s.push('\t'),
                                'r' => s.push('\r'),
                                '0' => s.push('\0'),
                                '\\' | '"' | '\'' => s.push(e),
                                'u' => {
                                    let mut hex = String::new();
                                    let mut ok = matches!(it.next(), Some((_, '{')));
                                    col += 1;
                                    while ok {
                                        match it.next() {
                                            Some((_, '}')) => break,
                                            Some((_, h))
                                                if h.is_ascii_hexdigit() && hex.len() < 6 =>
                                            {
                                                hex.push(h)
                                            }
                                            _ => ok = false,
                                        }
                                        col += 1;
                                    }
                                    match u32::from_str_radix(&hex, 16)
                                        .ok()
                                        .filter(|_| ok)
                                        .and_then(char::from_u32)
                                    {
                                        Some(ch) => s.push(ch),
                                        None => {
                                            return Err(ParseError::new(
                                                line,
                                                col,
                                                "bad unicode escape in string (expected \\u{HEX})",
                                            ))
                                        }
                                    }
                                }
                                other => {
                                    return Err(ParseError::new(
                                        line,
                                        col - 1,
                                        format!("unknown escape '\\{other}' in string"),
                                    ))
                                }
                            }
                        }
                        other => s.push(other),
                    }
                }
                out.push(Token {
                    tok: Tok::Str(s),
                    line: tl,
                    col: tc,
                });
            }
            c if c.is_ascii_digit()
                || (c == '-'
                    && src[end_of(i, c)..]
                        .chars()
                        .next()
                        .is_some_and(|d| d.is_ascii_digit())) =>
            {
                let bytes = src.as_bytes();
                let mut j = i;
                if bytes[j] == b'-' {
                    j += 1;
                }
                let digits = |j: &mut usize| {
                    while *j < bytes.len() && bytes[*j].is_ascii_digit() {
                        *j += 1;
                    }
                };
                digits(&mut j);
                if j + 1 < bytes.len() && bytes[j] == b'.' && bytes[j + 1].is_ascii_digit() {
                    j += 1;
                    digits(&mut j);
                }
                if j < bytes.len() && (bytes[j] == b'e' || bytes[j] == b'E') {
                    let mut k = j + 1;
                    if k < bytes.len() && (bytes[k] == b'-' || bytes[k] == b'+') {
                        k += 1;
                    }
                    if k < bytes.len() && bytes[k].is_ascii_digit() {
                        j = k;
                        digits(&mut j);
                    }
                }
                // Everything consumed is ASCII: one char per byte.
                while it.peek().is_some_and(|&(k, _)| k < j) {
                    it.next();
                    col += 1;
                }
                out.push(Token {
                    tok: Tok::Number(&src[i..j]),
                    line: tl,
                    col: tc,
                });
            }
            c if is_ident_start(c) => {
                let mut end = i;
                while let Some(&(j, d)) = it.peek() {
                    if !is_ident_char(d) {
                        break;
                    }
                    it.next();
                    col += 1;
                    end = end_of(j, d);
                }
                out.push(Token {
                    tok: Tok::Ident(&src[i..end]),
                    line: tl,
                    col: tc,
                });
            }
            '=' | ',' | ':' | '[' | ']' | '<' | '>' | '{' | '}' | '/' | '^' | '-' => {
                it.next();
                col += 1;
                out.push(Token {
                    tok: Tok::Punct(c),
                    line: tl,
                    col: tc,
                });
            }
            other => {
                return Err(ParseError::new(
                    tl,
                    tc,
                    format!("unexpected character {other:?}"),
                ))
            }
        }
    }
    out.push(Token {
        tok: Tok::Eof,
        line,
        col,
    });
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(src: &str) -> Vec<Tok<'_>> {
        lex(src).unwrap().into_iter().map(|t| t.tok).collect()
    }

    #[test]
    fn tokens() {
        assert_eq!(
            kinds("%3 = tlu.multi %1 tables=[@t0] ; c\n"),
            vec![
                Tok::Value("3"),
                Tok::Punct('='),
                Tok::Ident("tlu.multi"),
                Tok::Value("1"),
                Tok::Ident("tables"),
                Tok::Punct('='),
                Tok::Punct('['),
                Tok::At("t0"),
                Tok::Punct(']'),
                Tok::Newline,
                Tok::Eof
            ]
        );
        assert_eq!(
            kinds("2^-17.5 23x1 6.3e-5 -4 - \"a\\\"\\u{e9}\""),
            vec![
                Tok::Number("2"),
                Tok::Punct('^'),
                Tok::Number("-17.5"),
                Tok::Number("23"),
                Tok::Ident("x1"),
                Tok::Number("6.3e-5"),
                Tok::Number("-4"),
                Tok::Punct('-'),
                Tok::Str("a\"é".into()),
                Tok::Eof
            ]
        );
    }

    #[test]
    fn positions_and_errors() {
        let t = lex("veil 1\n  %x = é").unwrap_err();
        assert_eq!((t.line, t.col), (2, 8));
        let toks = lex("a\n  b").unwrap();
        assert_eq!((toks[2].line, toks[2].col), (2, 3));
        assert!(lex("\"abc").unwrap_err().msg.contains("unterminated"));
        assert!(lex("% x").unwrap_err().msg.contains("name after"));
    }
}
