//! WebKitGTK's renderer choice on Linux. Its DMA-BUF renderer needs a GPU render node; without
//! one (virtual machines, Xvfb, CI) it falls back to a path that is an order of magnitude slower
//! on a large canvas: measured under Xvfb, a 1,000-node flow took 14 s to render instead of
//! 0.8 s, and animation frames stalled for 300 ms instead of 40 ms during a 10M-record run.
//! So when the machine has no `/dev/dri/renderD*` and WEBKIT_DISABLE_DMABUF_RENDERER is unset,
//! the process re-executes itself once with WEBKIT_DISABLE_DMABUF_RENDERER=1 (an environment
//! variable cannot be set safely once a process may have threads; `exec` keeps the process id).
//! Setting the variable to any value, e.g. `0`, keeps WebKit's own choice.

use std::os::unix::process::CommandExt;

const VAR: &str = "WEBKIT_DISABLE_DMABUF_RENDERER";

/// Re-executes the process with the DMA-BUF renderer off when there is no GPU render node;
/// returns (and the app keeps WebKit's default) when nothing needs to change or exec failed.
pub(crate) fn choose() {
    if std::env::var_os(VAR).is_some() || has_render_node() {
        return;
    }
    let Ok(exe) = std::env::current_exe() else { return };
    let mut args = std::env::args_os();
    let mut command = std::process::Command::new(exe);
    if let Some(arg0) = args.next() {
        command.arg0(arg0);
    }
    let error = command.args(args).env(VAR, "1").exec();
    eprintln!(
        "flow-desktop: could not restart with {VAR}=1 ({error}); continuing with WebKit's default renderer"
    );
}

fn has_render_node() -> bool {
    std::fs::read_dir("/dev/dri").is_ok_and(|entries| {
        entries.filter_map(Result::ok).any(|e| e.file_name().to_string_lossy().starts_with("renderD"))
    })
}
