//! The minimal-versions check of `cargo xtask test`: the workspace, copied
//! to a temporary directory, resolved with every direct dependency at the
//! lowest version its requirement allows (`-Z direct-minimal-versions`), must
//! still build (`cargo check --workspace --all-targets`). So the version
//! requirements in the manifests stay true: a user whose other dependencies
//! hold one of ours at its lowest allowed version still compiles.
//!
//! The flag is unstable; `RUSTC_BOOTSTRAP=1` lets the stable toolchain use
//! it for this one resolution.

use std::path::Path;
use std::process::Command;

use crate::cargo;

/// Runs the check; its build artifacts go to `minimal-versions/` under the
/// target directory, so that a second run is quick.
pub(crate) fn run() -> Result<(), String> {
    let root = crate::workspace_root();
    let copy = std::env::temp_dir().join(format!("te-minimal-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&copy);
    // The tracked files only, as a clean checkout has them.
    let archive = Command::new("git")
        .current_dir(&root)
        .args(["ls-files", "-z"])
        .output()
        .map_err(|e| format!("git ls-files: {e}"))?;
    if !archive.status.success() {
        return Err("git ls-files failed".into());
    }
    for file in archive.stdout.split(|b| *b == 0).filter(|f| !f.is_empty()) {
        let relative = Path::new(std::str::from_utf8(file).map_err(|e| e.to_string())?);
        let (from, to) = (root.join(relative), copy.join(relative));
        if let Some(parent) = to.parent() {
            std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
        }
        copy_entry(&from, &to)?;
    }
    let result = check(&copy, &root);
    let _ = std::fs::remove_dir_all(&copy);
    result
}

/// Copies a file, or re-creates a symbolic link (te-core's `migrations`).
fn copy_entry(from: &Path, to: &Path) -> Result<(), String> {
    let meta = std::fs::symlink_metadata(from).map_err(|e| format!("{}: {e}", from.display()))?;
    if meta.file_type().is_symlink() {
        let target = std::fs::read_link(from).map_err(|e| format!("{}: {e}", from.display()))?;
        #[cfg(unix)]
        return std::os::unix::fs::symlink(&target, to)
            .map_err(|e| format!("{}: {e}", to.display()));
        #[cfg(not(unix))]
        return Err(format!("{}: symbolic links need unix", from.display()));
    }
    std::fs::copy(from, to)
        .map(drop)
        .map_err(|e| format!("{}: {e}", from.display()))
}

fn check(copy: &Path, root: &Path) -> Result<(), String> {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| root.join("target"))
        .join("minimal-versions");
    let _ = std::fs::remove_file(copy.join("Cargo.lock"));
    let resolve = cargo()
        .current_dir(copy)
        .env("RUSTC_BOOTSTRAP", "1")
        .args(["generate-lockfile", "-Z", "direct-minimal-versions"])
        .status()
        .map_err(|e| format!("cargo generate-lockfile: {e}"))?;
    if !resolve.success() {
        return Err(
            "no resolution with every direct dependency at its lowest allowed version: \
             raise the requirement cargo names above"
                .into(),
        );
    }
    let build = cargo()
        .current_dir(copy)
        .env("CARGO_TARGET_DIR", &target)
        .args(["check", "--quiet", "--workspace", "--all-targets"])
        .status()
        .map_err(|e| format!("cargo check: {e}"))?;
    if build.success() {
        Ok(())
    } else {
        Err(
            "the workspace does not build with its dependencies at their lowest allowed \
             versions: raise the requirement of the crate whose API is missing"
                .into(),
        )
    }
}
