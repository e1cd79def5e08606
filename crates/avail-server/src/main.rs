//! `avail-server`: thin entry point; everything lives in the library.

/// mimalloc rather than glibc's malloc: the NOTIFY fan-out allocates and frees many small
/// buffers per message, and glibc's allocator was ~12% of the server's CPU under load.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    avail_server::main()
}
