import COpenSSL
import Glibc
import Runtime

/// TLS to Redis (`rediss://`, issue 18): how the server is verified and who the client is.
package struct RedisTLSConfiguration: Sendable, Equatable {
    /// PEM file of the certificate authorities to trust; nil: the system's (`/etc/ssl/certs`).
    package var caFile: String?
    /// PEM certificate chain and key for client authentication (`tls-auth-clients yes`); both or neither.
    package var certificateFile: String?
    package var keyFile: String?
    /// The name the server's certificate must carry; nil: the host connected to (a DNS name, or an
    /// IP address matched against the certificate's IP entries).
    package var serverName: String?

    package init(caFile: String? = nil, certificateFile: String? = nil, keyFile: String? = nil, serverName: String? = nil) {
        self.caFile = caFile
        self.certificateFile = certificateFile
        self.keyFile = keyFile
        self.serverName = serverName
    }
}

/// One client TLS session over a connected non-blocking socket, OpenSSL reading and writing the
/// descriptor itself. Verification is never optional: the peer's chain must lead to a trusted CA
/// and name the expected host.
@LoopActor
final class RedisTLSSession {
    /// What an operation needs before it can go on.
    enum Progress: Equatable {
        case done
        case wantsRead
        case wantsWrite
        /// The session is unusable; the text says why (certificate errors included).
        case failed(String)
    }

    private let context: OpaquePointer
    private let ssl: OpaquePointer

    /// A session for `fd`, expecting `host` (or `configuration.serverName`); nil and a reason when
    /// the files cannot be loaded.
    static func make(fd: CInt, host: String, configuration: RedisTLSConfiguration) -> Result<RedisTLSSession, RedisConnectFailure> {
        guard let context = SSL_CTX_new(TLS_client_method()) else { return .failure(failure("cannot create a TLS context")) }
        func fail(_ what: String) -> Result<RedisTLSSession, RedisConnectFailure> {
            SSL_CTX_free(context)
            return .failure(failure(what))
        }
        _ = SSL_CTX_ctrl(context, SSL_CTRL_SET_MIN_PROTO_VERSION, Int(TLS1_2_VERSION), nil)
        SSL_CTX_set_verify(context, SSL_VERIFY_PEER, nil)
        if let caFile = configuration.caFile {
            guard SSL_CTX_load_verify_locations(context, caFile, nil) == 1 else { return fail("cannot load REDIS_TLS_CA_FILE \(caFile)") }
        } else if SSL_CTX_set_default_verify_paths(context) != 1 {
            return fail("cannot load the system's certificate authorities")
        }
        if let certificate = configuration.certificateFile, let key = configuration.keyFile {
            guard SSL_CTX_use_certificate_chain_file(context, certificate) == 1 else {
                return fail("cannot load REDIS_TLS_CERT_FILE \(certificate)")
            }
            guard SSL_CTX_use_PrivateKey_file(context, key, SSL_FILETYPE_PEM) == 1, SSL_CTX_check_private_key(context) == 1 else {
                return fail("cannot load REDIS_TLS_KEY_FILE \(key) (or it does not match the certificate)")
            }
        }
        guard let ssl = SSL_new(context) else { return fail("cannot create a TLS session") }
        let session = RedisTLSSession(context: context, ssl: ssl)
        // Partial writes: a large pipeline goes out as the socket takes it, from a buffer that may
        // move between calls (ours is a Swift array).
        _ = SSL_ctrl(ssl, SSL_CTRL_MODE, Int(SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER), nil)
        let name = configuration.serverName ?? host
        if RedisHostResolver.isNumeric(name) {
            guard X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name) == 1 else {
                return .failure(failure("cannot verify against the address \(name)"))
            }
        } else {
            // SNI, and the name the certificate must carry.
            _ = name.withCString { SSL_ctrl(ssl, SSL_CTRL_SET_TLSEXT_HOSTNAME, Int(TLSEXT_NAMETYPE_host_name), UnsafeMutableRawPointer(mutating: $0)) }
            guard SSL_set1_host(ssl, name) == 1 else { return .failure(failure("cannot verify against the name \(name)")) }
        }
        guard SSL_set_fd(ssl, fd) == 1 else { return .failure(failure("cannot attach TLS to the socket")) }
        SSL_set_connect_state(ssl)
        return .success(session)
    }

    private init(context: OpaquePointer, ssl: OpaquePointer) {
        self.context = context
        self.ssl = ssl
    }

    isolated deinit {
        SSL_free(ssl)
        SSL_CTX_free(context)
    }

    /// Advances the handshake.
    func handshake() -> Progress {
        progress(SSL_do_handshake(ssl), operation: "TLS handshake")
    }

    /// Reads decrypted bytes into `buffer`: the count, 0 at a clean close by the peer, or nil with
    /// what to wait for (`progress`).
    func read(into buffer: UnsafeMutableRawBufferPointer) -> (count: Int, progress: Progress) {
        guard let base = buffer.baseAddress else { return (0, .done) }
        let result = SSL_read(ssl, base, CInt(min(buffer.count, Int(CInt.max))))
        if result > 0 { return (Int(result), .done) }
        if SSL_get_error(ssl, result) == SSL_ERROR_ZERO_RETURN { return (0, .done) }
        return (-1, progress(result, operation: "TLS read"))
    }

    /// Writes from `bytes`: how many were taken, or what to wait for.
    func write(_ bytes: UnsafeRawBufferPointer) -> (count: Int, progress: Progress) {
        guard let base = bytes.baseAddress, !bytes.isEmpty else { return (0, .done) }
        let result = SSL_write(ssl, base, CInt(min(bytes.count, Int(CInt.max))))
        if result > 0 { return (Int(result), .done) }
        return (0, progress(result, operation: "TLS write"))
    }

    private func progress(_ result: CInt, operation: String) -> Progress {
        if result == 1 { return .done }
        switch SSL_get_error(ssl, result) {
        case SSL_ERROR_WANT_READ: return .wantsRead
        case SSL_ERROR_WANT_WRITE: return .wantsWrite
        case SSL_ERROR_ZERO_RETURN: return .failed("\(operation): the server closed the TLS session")
        case SSL_ERROR_SYSCALL:
            let code = errno
            return .failed("\(operation): \(code == 0 ? "connection closed" : String(cString: strerror(code)))")
        default:
            let verify = SSL_get_verify_result(ssl)
            if verify != X509_V_OK {
                return .failed("\(operation): certificate verification failed: \(String(cString: X509_verify_cert_error_string(verify)))")
            }
            return .failed("\(operation) failed: \(Self.errorQueue())")
        }
    }

    /// OpenSSL's error queue as text (and emptied, so the next error starts clean).
    private static func errorQueue() -> String {
        var texts: [String] = []
        while true {
            let code = ERR_get_error()
            if code == 0 { break }
            var buffer = [CChar](repeating: 0, count: 256)
            ERR_error_string_n(code, &buffer, buffer.count)
            texts.append(String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
        }
        return texts.isEmpty ? "unknown error" : texts.joined(separator: "; ")
    }

    private static func failure(_ text: String) -> RedisConnectFailure {
        RedisConnectFailure(reason: text + (ERR_peek_error() != 0 ? ": \(errorQueue())" : ""))
    }
}
