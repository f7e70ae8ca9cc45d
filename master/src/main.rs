fn main() -> std::process::ExitCode {
    stampede_master::cli::main()
}
