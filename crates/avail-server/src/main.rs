//! `avail-server`: thin entry point; everything lives in the library.

fn main() -> std::process::ExitCode {
    avail_server::main()
}
