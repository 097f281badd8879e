import Glibc
import Runtime

/// The standard `process_*` metrics, read from the kernel at scrape time.
package enum ProcessMetrics {
    /// Adds `process_resident_memory_bytes`, `process_cpu_seconds_total`, `process_open_fds`,
    /// `process_max_fds` and `process_start_time_seconds` (the time of this call, made at startup).
    @LoopActor
    package static func register(in registry: MetricsRegistry) {
        let start = Double(WallClock.milliseconds()) / 1000
        _ = registry.gauge("process_resident_memory_bytes", help: "Resident memory size in bytes.") { residentBytes() ?? 0 }
        registry.sampledCounter("process_cpu_seconds_total", help: "Total user and system CPU time spent in seconds.") { cpuSeconds() }
        _ = registry.gauge("process_open_fds", help: "Number of open file descriptors.") { openFileDescriptors().map(Double.init) ?? 0 }
        _ = registry.gauge("process_max_fds", help: "Maximum number of open file descriptors.") { maximumFileDescriptors() }
        _ = registry.gauge("process_start_time_seconds", help: "Start time of the process since the Unix epoch in seconds.") { start }
    }

    /// Resident set size: the second field of `/proc/self/statm` (pages) times the page size.
    package static func residentBytes() -> Double? {
        guard let text = readSmallFile("/proc/self/statm") else { return nil }
        return parseStatmResidentPages(text).map { Double($0) * Double(sysconf(Int32(_SC_PAGESIZE))) }
    }

    /// The resident page count in a `/proc/<pid>/statm` line (`size resident shared ...`).
    package static func parseStatmResidentPages(_ text: String) -> Int? {
        let fields = text.split(separator: " ", omittingEmptySubsequences: true)
        guard fields.count >= 2 else { return nil }
        return Int(fields[1].filter { $0 != "\n" })
    }

    /// User plus system CPU time of the process (all threads).
    package static func cpuSeconds() -> Double {
        var usage = rusage()
        guard getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage) == 0 else { return 0 }
        func seconds(_ time: timeval) -> Double { Double(time.tv_sec) + Double(time.tv_usec) / 1_000_000 }
        return seconds(usage.ru_utime) + seconds(usage.ru_stime)
    }

    /// The soft `RLIMIT_NOFILE` (what `open` and `accept` are held to).
    package static func maximumFileDescriptors() -> Double {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return 0 }
        return Double(limit.rlim_cur)  // RLIM_INFINITY (all ones) reads as about 1.8e19: no cap
    }

    /// Entries of `/proc/self/fd`, less the one `opendir` itself holds.
    package static func openFileDescriptors() -> Int? {
        guard let directory = opendir("/proc/self/fd") else { return nil }
        defer { closedir(directory) }
        var count = 0
        while let entry = readdir(directory) {
            let isDot = withUnsafeBytes(of: entry.pointee.d_name) { name in
                name[0] == UInt8(ascii: ".") && (name[1] == 0 || (name[1] == UInt8(ascii: ".") && name[2] == 0))
            }
            if !isDot { count += 1 }
        }
        return max(0, count - 1)
    }

    /// Reads up to 4 KiB of a `/proc` file (they report a size of 0, so read until EOF).
    private static func readSmallFile(_ path: String) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 4096)
        var filled = 0
        while filled < buffer.count {
            let got = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress.map { $0 + filled }, $0.count - filled) }
            if got < 0 && errno == EINTR { continue }
            guard got > 0 else { break }
            filled += got
        }
        return String(decoding: buffer[..<filled], as: UTF8.self)
    }
}
