//! Which scenario files a sweep runs: files, bare names looked up in
//! `scenarios/`, directories, and file-name patterns with `*`.

use super::SweepError;
use std::path::{Path, PathBuf};

/// The bundled scenarios directory (the working directory's, else the source tree's).
pub fn scenarios_dir() -> PathBuf {
    let local = PathBuf::from("scenarios");
    if local.is_dir() {
        return local;
    }
    // this crate is host/ of the repository; scenarios/ is beside it
    let host = Path::new(env!("CARGO_MANIFEST_DIR"));
    host.parent().unwrap_or(host).join("scenarios")
}

/// A scenario argument as a path: an existing file or anything with a `/`
/// as given, else `scenarios/<file>`, else `scenarios/<file>.yaml`.
pub fn resolve(file: &str) -> PathBuf {
    let p = PathBuf::from(file);
    if p.exists() || file.contains('/') {
        return p;
    }
    let dir = scenarios_dir();
    let direct = dir.join(file);
    if direct.exists() {
        return direct;
    }
    dir.join(format!("{file}.yaml"))
}

/// Does `name` match `pat`, where `*` stands for any run of characters
/// (none too) and every other character for itself?
pub fn glob_match(pat: &str, name: &str) -> bool {
    let (p, n): (Vec<char>, Vec<char>) = (pat.chars().collect(), name.chars().collect());
    let (mut pi, mut ni) = (0, 0);
    // Where the last `*` was, and the name position it currently stands up to.
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ni));
            pi += 1;
        } else if pi < p.len() && p[pi] == n[ni] {
            pi += 1;
            ni += 1;
        } else if let Some((sp, sn)) = star {
            // Let that `*` take one more character and try again.
            star = Some((sp, sn + 1));
            pi = sp + 1;
            ni = sn + 1;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// The `*.yaml` files of `dir`, sorted by file name.
fn yaml_files(dir: &Path, pattern: &str) -> Result<Vec<PathBuf>, SweepError> {
    let rd = std::fs::read_dir(dir).map_err(|e| SweepError::Pattern {
        pattern: pattern.to_string(),
        msg: format!(
            "cannot list {}: {e}; give an existing directory",
            dir.display()
        ),
    })?;
    let mut v: Vec<PathBuf> = rd
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    v.sort_by(|a, b| a.file_name().cmp(&b.file_name()));
    Ok(v)
}

/// Expand sweep arguments into scenario files, sorted by file name (then
/// path) and without repeats. No argument: every `scenarios/*.yaml`.
///
/// `PATTERN` is a file, a bare name (`cow`, `cow.yaml`), a directory (its
/// `*.yaml`), or a pattern whose file-name part has `*` (`co*`,
/// `dir/*.yaml`; a pattern without `/` looks in `scenarios/`, and also
/// matches a `.yaml` file by its name without the extension).
pub fn expand(patterns: &[String]) -> Result<Vec<PathBuf>, SweepError> {
    let mut out: Vec<PathBuf> = Vec::new();
    if patterns.is_empty() {
        let dir = scenarios_dir();
        out = yaml_files(&dir, "(every scenario)")?;
        if out.is_empty() {
            return Err(SweepError::Pattern {
                pattern: "(every scenario)".into(),
                msg: format!(
                    "{} holds no .yaml scenario; name the files to sweep",
                    dir.display()
                ),
            });
        }
    }
    for pat in patterns {
        if pat.contains('*') {
            let (dir, name) = match pat.rfind('/') {
                Some(0) => (PathBuf::from("/"), &pat[1..]),
                Some(i) => (PathBuf::from(&pat[..i]), &pat[i + 1..]),
                None => (scenarios_dir(), pat.as_str()),
            };
            if dir.to_string_lossy().contains('*') {
                return Err(SweepError::Pattern {
                    pattern: pat.clone(),
                    msg: "'*' may stand only in the file name, not in the directory".into(),
                });
            }
            let found: Vec<PathBuf> = yaml_files(&dir, pat)?
                .into_iter()
                .filter(|p| {
                    let f = p.file_name().unwrap_or_default().to_string_lossy();
                    let stem = p.file_stem().unwrap_or_default().to_string_lossy();
                    glob_match(name, &f) || glob_match(name, &stem)
                })
                .collect();
            if found.is_empty() {
                return Err(SweepError::Pattern {
                    pattern: pat.clone(),
                    msg: format!(
                        "matches no .yaml file in {}; `shootdown list` shows the bundled scenarios",
                        dir.display()
                    ),
                });
            }
            out.extend(found);
            continue;
        }
        let p = resolve(pat);
        if p.is_dir() {
            let found = yaml_files(&p, pat)?;
            if found.is_empty() {
                return Err(SweepError::Pattern {
                    pattern: pat.clone(),
                    msg: format!("the directory {} holds no .yaml scenario", p.display()),
                });
            }
            out.extend(found);
        } else if p.is_file() {
            out.push(p);
        } else {
            return Err(SweepError::Pattern {
                pattern: pat.clone(),
                msg: format!(
                    "no such scenario ({} does not exist); give a file, a name from `shootdown list`, or a pattern like 'co*'",
                    p.display()
                ),
            });
        }
    }
    out.sort_by(|a, b| (a.file_name(), a.as_path()).cmp(&(b.file_name(), b.as_path())));
    let mut seen = std::collections::BTreeSet::new();
    out.retain(|p| seen.insert(std::fs::canonicalize(p).unwrap_or_else(|_| p.clone())));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::glob_match;

    #[test]
    fn star_matches_any_run() {
        assert!(glob_match("*", ""));
        assert!(glob_match("*", "cow.yaml"));
        assert!(glob_match("co*", "cow"));
        assert!(glob_match("*.yaml", "cow.yaml"));
        assert!(glob_match("c*w*", "cow.yaml"));
        assert!(glob_match("*a*a", "banana"));
        assert!(glob_match("cow", "cow"));
        assert!(!glob_match("cow", "cows"));
        assert!(!glob_match("co*", "scow"));
        assert!(!glob_match("*.yml", "cow.yaml"));
        assert!(!glob_match("*a*b", "banana"));
    }
}
