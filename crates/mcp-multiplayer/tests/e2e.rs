//! Runs the end-to-end suite in `tests/e2e` (the official Python MCP SDK against this binary) as
//! part of `cargo test`.
//!
//! The suite needs Python 3.10+ and the packages pinned in `tests/e2e/requirements.txt`. They are
//! installed once into `<target dir>/e2e-venv`, which is rebuilt whenever the requirements file
//! changes (a copy of it is kept inside the venv to compare against).
//!
//! Without Python, or without access to PyPI, the test prints `SKIPPED e2e: <reason>` and passes,
//! unless `CI` is set, where it fails instead.
//!
//! Knobs: `MCP_E2E_PYTHON` picks the interpreter; `MCP_E2E_PYTEST_ARGS` adds pytest arguments
//! (whitespace-separated, e.g. `-k restart -x`).

use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

/// Progress and skip notices go straight to stderr: the test harness captures `eprintln!`, and
/// would hide them unless `--nocapture` is given.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

const BINARY: &str = env!("CARGO_BIN_EXE_mcp-multiplayer");
/// Kept inside the venv: the requirements it was built from.
const STAMP: &str = "requirements.installed.txt";

#[test]
fn python_sdk_end_to_end_suite() {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("crates/mcp-multiplayer sits two levels below the workspace root")
        .to_path_buf();
    let requirements_path = workspace.join("tests/e2e/requirements.txt");
    let requirements = fs::read(&requirements_path)
        .unwrap_or_else(|error| panic!("cannot read {}: {error}", requirements_path.display()));

    let python = match find_python() {
        Ok(python) => python,
        Err(reason) => return skip(&reason),
    };
    let venv = target_dir().join("e2e-venv");
    let venv_python = match ensure_venv(&python, &venv, &requirements_path, &requirements) {
        Ok(path) => path,
        Err(Unavailable(reason)) => return skip(&reason),
    };

    let mut args: Vec<OsString> = ["-m", "pytest", "tests/e2e", "-q"]
        .iter()
        .map(OsString::from)
        .collect();
    if let Ok(extra) = std::env::var("MCP_E2E_PYTEST_ARGS") {
        args.extend(extra.split_whitespace().map(OsString::from));
    }
    say!(
        "e2e: running the Python suite against {BINARY} (cwd {})",
        workspace.display()
    );
    let started = Instant::now();
    // Output is inherited, so it streams straight to the terminal as pytest runs.
    let status = Command::new(&venv_python)
        .args(&args)
        .current_dir(&workspace)
        .env("MCP_MULTIPLAYER_BIN", BINARY)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("PYTHONUNBUFFERED", "1")
        .stdin(Stdio::null())
        .status()
        .unwrap_or_else(|error| panic!("could not run {}: {error}", venv_python.display()));
    say!(
        "e2e: pytest finished in {:.1} s with {status}",
        started.elapsed().as_secs_f64()
    );
    assert!(
        status.success(),
        "the end-to-end suite failed ({status}); see the pytest output above"
    );
}

/// Why the suite cannot run on this machine (as opposed to failing).
struct Unavailable(String);

/// Without CI, an unavailable suite is skipped loudly; in CI it is a failure.
fn skip(reason: &str) {
    if std::env::var_os("CI").is_some() {
        panic!("e2e cannot run and CI is set: {reason}");
    }
    say!("");
    say!("==================================================================");
    say!("SKIPPED e2e: {reason}");
    say!("==================================================================");
    say!("");
}

/// `<target>/debug/mcp-multiplayer` → `<target>`.
fn target_dir() -> PathBuf {
    let binary = Path::new(BINARY);
    binary
        .parent()
        .and_then(Path::parent)
        .map_or_else(|| binary.with_file_name(""), Path::to_path_buf)
}

/// The first interpreter that is Python 3.10 or newer.
fn find_python() -> Result<PathBuf, String> {
    let candidates: Vec<String> = match std::env::var("MCP_E2E_PYTHON") {
        Ok(chosen) => vec![chosen],
        Err(_) => ["python3", "python"].map(String::from).to_vec(),
    };
    let mut seen = Vec::new();
    for candidate in &candidates {
        let output = Command::new(candidate)
            .args([
                "-c",
                "import sys; print(sys.version_info[0], sys.version_info[1])",
            ])
            .stdin(Stdio::null())
            .output();
        let Ok(output) = output else {
            seen.push(format!("{candidate}: not found"));
            continue;
        };
        let text = String::from_utf8_lossy(&output.stdout);
        let version: Vec<u32> = text
            .split_whitespace()
            .filter_map(|part| part.parse().ok())
            .collect();
        match version.as_slice() {
            [major, minor] if (*major, *minor) >= (3, 10) => return Ok(PathBuf::from(candidate)),
            [major, minor] => seen.push(format!("{candidate} is {major}.{minor}")),
            _ => seen.push(format!("{candidate}: could not read its version")),
        }
    }
    Err(format!(
        "no Python 3.10+ found ({}); install python3 or set MCP_E2E_PYTHON",
        seen.join("; ")
    ))
}

fn venv_python_of(venv: &Path) -> PathBuf {
    if cfg!(windows) {
        venv.join("Scripts").join("python.exe")
    } else {
        venv.join("bin").join("python")
    }
}

/// Returns the venv's interpreter, building the venv first if it is missing or was built from
/// other requirements. It is built beside its final place and renamed into it, so an interrupted
/// install never looks complete.
fn ensure_venv(
    python: &Path,
    venv: &Path,
    requirements_path: &Path,
    requirements: &[u8],
) -> Result<PathBuf, Unavailable> {
    let venv_python = venv_python_of(venv);
    let up_to_date = fs::read(venv.join(STAMP)).is_ok_and(|stamp| stamp == requirements);
    if up_to_date && venv_python.exists() {
        say!("e2e: using the venv at {}", venv.display());
        return Ok(venv_python);
    }

    let building = venv.with_file_name(format!("e2e-venv.building-{}", std::process::id()));
    let _ = fs::remove_dir_all(&building);
    let started = Instant::now();
    say!("e2e: creating venv at {}…", venv.display());
    let created = Command::new(python)
        .args(["-m", "venv"])
        .arg(&building)
        .stdin(Stdio::null())
        .output()
        .map_err(|error| Unavailable(format!("could not run {}: {error}", python.display())))?;
    if !created.status.success() {
        let _ = fs::remove_dir_all(&building);
        return Err(Unavailable(format!(
            "`{} -m venv` failed (on Debian/Ubuntu: apt install python3-venv): {}",
            python.display(),
            tail(&created.stderr)
        )));
    }

    let pins: Vec<&str> = std::str::from_utf8(requirements)
        .unwrap_or_default()
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .collect();
    say!(
        "e2e: installing {}… (once; this takes a while)",
        pins.join(", ")
    );
    let installed = Command::new(venv_python_of(&building))
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "-r",
        ])
        .arg(requirements_path)
        .stdin(Stdio::null())
        .output()
        .map_err(|error| Unavailable(format!("could not run pip: {error}")))?;
    if !installed.status.success() {
        let _ = fs::remove_dir_all(&building);
        return Err(Unavailable(format!(
            "pip could not install tests/e2e/requirements.txt (is PyPI reachable?): {}",
            tail(&installed.stderr)
        )));
    }
    if let Err(error) = fs::write(building.join(STAMP), requirements) {
        panic!("cannot write {}: {error}", building.join(STAMP).display());
    }

    let _ = fs::remove_dir_all(venv);
    if let Err(error) = fs::rename(&building, venv) {
        // Another run may have finished its own venv first; use that one if it is current.
        let _ = fs::remove_dir_all(&building);
        let current = fs::read(venv.join(STAMP)).is_ok_and(|stamp| stamp == requirements);
        assert!(
            current,
            "cannot move the new venv into {}: {error}",
            venv.display()
        );
    }
    say!(
        "e2e: venv ready in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(venv_python)
}

/// The last few lines of a command's output, for error messages.
fn tail(output: &[u8]) -> String {
    let text = String::from_utf8_lossy(output);
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(12)..].join("\n")
}
