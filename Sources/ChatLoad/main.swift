import CLinux
import Glibc
import Shared

// ChatLoad: holds N authenticated Socket.IO connections against a gateway (see LoadOptions.usage).
// Everything runs on the one event loop of this process: no thread per connection.

let signalFD = ShutdownSignals.install()

let options: LoadOptions
switch Result(catching: { () throws(LoadOptionsError) -> LoadOptions in
    try LoadOptions(arguments: Array(CommandLine.arguments.dropFirst())) { name in getenv(name).map { String(cString: $0) } }
}) {
case .success(let parsed):
    options = parsed
case .failure(.helpRequested):
    print(LoadOptions.usage)
    exit(0)
case .failure(let error):
    writeStandardError("ChatLoad: \(error.description)")
    exit(2)
}

FileLimit.raiseToHardLimit(needed: options.connections + FileLimit.reserve)

if let redisURL = options.redisURL {
    Task.onLoop {
        let reference: RedisSubscriberLoad
        do {
            reference = try RedisSubscriberLoad(options: options, url: redisURL)
        } catch {
            writeStandardError("ChatLoad: \(String(describing: error))")
            ProcessExitStatus.set(2)
            EventLoop.shared.stop()
            return
        }
        _ = try? SignalWatcher(fd: signalFD) { _ in reference.finish() }
        reference.start()
    }
    EventLoop.shared.run()
    exit(ProcessExitStatus.current)
}

Task.onLoop {
    let generator: LoadGenerator
    do {
        generator = try LoadGenerator(options: options)
    } catch {
        writeStandardError("ChatLoad: \(String(describing: error))")
        ProcessExitStatus.set(2)
        EventLoop.shared.stop()
        return
    }
    do {
        // The watcher's registration keeps it (and through it the generator) alive.
        _ = try SignalWatcher(fd: signalFD) { signal in
            generator.finish(reason: signal == SIGINT ? "SIGINT" : "SIGTERM")
        }
    } catch {
        writeStandardError("ChatLoad: cannot watch signals (\(String(describing: error))); stop it with SIGKILL")
    }
    LoadGenerator.current = generator
    generator.start()
}
EventLoop.shared.run()
exit(ProcessExitStatus.current)
