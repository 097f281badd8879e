import CLinux
import Glibc
import Shared

/// The open-file limit: every connection is a file descriptor.
enum FileLimit {
    /// Descriptors the process needs besides its connections (stdio, epoll, eventfd, signalfd, slack).
    static let reserve = 100

    /// Raises the soft RLIMIT_NOFILE to the hard limit and warns when even that is below `needed`.
    static func raiseToHardLimit(needed: Int) {
        var limit = rlimit()
        guard getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit) == 0 else {
            writeStandardError("ChatLoad: warning: getrlimit(RLIMIT_NOFILE) failed: \(SystemError("getrlimit"))")
            return
        }
        if limit.rlim_cur < limit.rlim_max {
            var raised = limit
            raised.rlim_cur = limit.rlim_max
            if setrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &raised) == 0 { limit = raised }
        }
        // RLIM_INFINITY is all ones, which clamps to Int.max.
        let hard = Int(clamping: limit.rlim_max)
        if hard < needed {
            writeStandardError("""
                ChatLoad: warning: the open-file hard limit is \(hard), below the \(needed) this run needs \
                (connections + \(reserve)); connections past it fail with EMFILE. Raise it before starting: \
                as root 'ulimit -Hn \(needed)' (needs CAP_SYS_RESOURCE, at most /proc/sys/fs/nr_open), or \
                LimitNOFILE= in a systemd unit, or split the run over several ChatLoad processes with \
                disjoint --user-base.
                """)
        }
    }
}
