//! `avail-server`: thin entry point; everything lives in the library.

/// jemalloc rather than glibc's malloc: the NOTIFY fan-out allocates and frees many small
/// buffers per message, and glibc's allocator was ~12% of the server's CPU under load.
/// Against mimalloc (used before), measured with presence-load (1,000 watchers, 15,000
/// NOTIFY/s): the same CPU per NOTIFY within this host's noise, peak memory half over TCP
/// and three quarters over UDP.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> std::process::ExitCode {
    avail_server::main()
}
