fn main() -> std::process::ExitCode {
    keyquorum::cli::main()
}
