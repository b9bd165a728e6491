//! Generates the Tauri context (config, capabilities, icons) the `generate_context!` macro reads.

fn main() {
    tauri_build::build();
}
