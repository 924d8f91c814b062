fn main() -> std::process::ExitCode {
    picosnitch::cli::main()
}
