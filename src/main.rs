/// jemalloc, not glibc's malloc: see its entry in Cargo.toml. Only the binary sets it (nodes,
/// `keyquorum bench`); the library's in-process tests run on the default allocator.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> std::process::ExitCode {
    keyquorum::cli::main()
}
