fn main() -> std::process::ExitCode {
    stampede_master::app::main()
}
