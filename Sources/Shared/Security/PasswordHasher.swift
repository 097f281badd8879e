import COpenSSL

/// scrypt cost parameters: N = 2^logN, block size r, parallelism p. Memory use is about 128 * r * N
/// bytes; time grows with N * r * p.
package struct ScryptParameters: Sendable, Equatable, CustomStringConvertible {
    /// Accepted range of logN when reading a stored hash.
    package static let logNRange: ClosedRange<Int> = 10...20
    /// Accepted range of r.
    package static let blockSizeRange: ClosedRange<Int> = 1...32
    /// Accepted range of p.
    package static let parallelismRange: ClosedRange<Int> = 1...16
    /// Parameters needing more memory than this (128 * r * N) are refused, so no hash string can make
    /// the service allocate several gigabytes (ln=20 with r=32 would be 4 GiB).
    package static let maximumMemoryBytes = 1 << 30

    /// OWASP's scrypt recommendation: N = 2^17, r = 8, p = 1 (128 MiB per hash).
    package static let `default` = ScryptParameters(uncheckedLogN: 17, r: 8, p: 1)

    /// log2 of the CPU/memory cost N.
    package let logN: Int
    /// Block size.
    package let r: Int
    /// Parallelism.
    package let p: Int

    /// Parameters within the accepted ranges, or nil.
    package init?(logN: Int, r: Int, p: Int) {
        guard Self.logNRange.contains(logN), Self.blockSizeRange.contains(r), Self.parallelismRange.contains(p)
        else { return nil }
        self.init(uncheckedLogN: logN, r: r, p: p)
        guard memoryBytes <= Self.maximumMemoryBytes else { return nil }
    }

    private init(uncheckedLogN logN: Int, r: Int, p: Int) {
        self.logN = logN
        self.r = r
        self.p = p
    }

    /// Nominal memory use, 128 * r * N bytes (OpenSSL adds a little: see `PasswordHasher.derive`).
    package var memoryBytes: Int {
        128 * r * (1 << logN)
    }

    /// The PHC parameter list, e.g. `ln=17,r=8,p=1`.
    package var description: String {
        "ln=\(logN),r=\(r),p=\(p)"
    }

    /// Parses exactly `ln=<int>,r=<int>,p=<int>` (no leading zeros) within the accepted ranges.
    package init?(phcParameters text: Substring) {
        let fields = text.split(separator: ",", omittingEmptySubsequences: false)
        guard fields.count == 3,
            let logN = Self.value(fields[0], name: "ln"),
            let r = Self.value(fields[1], name: "r"),
            let p = Self.value(fields[2], name: "p")
        else { return nil }
        self.init(logN: logN, r: r, p: p)
    }

    private static func value(_ field: Substring, name: String) -> Int? {
        let prefix = name + "="
        guard field.hasPrefix(prefix) else { return nil }
        let digits = field.dropFirst(prefix.count)
        guard (1...3).contains(digits.count), digits.allSatisfy({ $0.isASCII && $0.isNumber }),
            digits.first != "0" || digits.count == 1
        else { return nil }
        return Int(digits)
    }
}

/// Why a hash could not be computed.
package enum PasswordHasherError: Error, Sendable, Equatable, CustomStringConvertible {
    /// OpenSSL's scrypt failed (in practice: the memory it needs could not be allocated).
    case derivationFailed(String)

    /// A sentence for the log.
    package var description: String {
        switch self {
        case .derivationFailed(let detail): "password hashing failed: \(detail)"
        }
    }
}

/// scrypt password hashing (OpenSSL EVP_KDF "SCRYPT") with PHC-format strings:
/// `$scrypt$ln=17,r=8,p=1$<salt, base64 unpadded>$<key, base64 unpadded>`.
///
/// Every method that derives a key is deliberately slow (about 0.3-0.5 s and 128 MiB with the default
/// parameters) and blocks the calling thread: call them from the thread pool, never on an event loop.
package struct PasswordHasher: Sendable {
    /// Random salt per hash.
    package static let saltLength = 16
    /// Derived key length.
    package static let keyLength = 32
    private static let prefix = "$scrypt$"

    /// Parameters for new hashes.
    package let parameters: ScryptParameters

    /// Creates a hasher producing hashes with `parameters`.
    package init(parameters: ScryptParameters = .default) {
        self.parameters = parameters
    }

    /// Hashes `password` (its UTF-8 bytes, unnormalised) with a fresh random salt. Blocking; slow.
    package func hash(_ password: String) throws(PasswordHasherError) -> String {
        let salt = SecureRandom.bytes(Self.saltLength)
        let key = try Self.derive(
            password: Array(password.utf8), salt: salt, parameters: parameters, length: Self.keyLength)
        return Self.prefix + parameters.description + "$" + Base64.encodeUnpadded(salt) + "$"
            + Base64.encodeUnpadded(key)
    }

    /// True when `password` matches `encoded`, using the parameters stored in `encoded`. Malformed or
    /// out-of-range strings give false. Blocking; slow. The key comparison is constant-time.
    package func verify(_ password: String, against encoded: String) -> Bool {
        guard let stored = StoredHash(encoded) else { return false }
        guard
            let key = try? Self.derive(
                password: Array(password.utf8), salt: stored.salt, parameters: stored.parameters,
                length: stored.key.count)
        else { return false }
        return ConstantTime.equals(key, stored.key)
    }

    /// Spends the same time as `verify` with this hasher's parameters and always returns false: call
    /// it when the account does not exist, so response time does not reveal which usernames exist.
    package func verifyWithoutAccount(_ password: String) -> Bool {
        let salt = [UInt8](repeating: 0, count: Self.saltLength)
        _ = try? Self.derive(
            password: Array(password.utf8), salt: salt, parameters: parameters, length: Self.keyLength)
        return false
    }

    /// True when `encoded` should be replaced by a fresh hash after a successful login: it is
    /// malformed, or was made with other parameters, salt length or key length than this hasher uses.
    package func needsRehash(_ encoded: String) -> Bool {
        guard let stored = StoredHash(encoded) else { return true }
        return stored.parameters != parameters || stored.salt.count != Self.saltLength
            || stored.key.count != Self.keyLength
    }

    /// Runs scrypt. `maxmem_bytes` is set from the parameters so OpenSSL's 32 MiB default does not
    /// refuse the defaults, while nothing larger than needed can be allocated.
    static func derive(
        password: [UInt8],
        salt: [UInt8],
        parameters: ScryptParameters,
        length: Int
    ) throws(PasswordHasherError) -> [UInt8] {
        guard let kdf = EVP_KDF_fetch(nil, "SCRYPT", nil) else {
            throw .derivationFailed("scrypt is not available: \(OpenSSLSupport.lastError())")
        }
        defer { EVP_KDF_free(kdf) }
        guard let context = EVP_KDF_CTX_new(kdf) else {
            throw .derivationFailed("cannot create a KDF context: \(OpenSSLSupport.lastError())")
        }
        defer { EVP_KDF_CTX_free(context) }

        // OSSL_PARAM keeps pointers to its key names and values, which must stay valid until the
        // derive call returns: the numbers live in one allocation, the names in one NUL-separated
        // buffer.
        let blockBytes = 128 * UInt64(parameters.r)
        let numbers = UnsafeMutablePointer<UInt64>.allocate(capacity: 4)
        numbers.initialize(repeating: 0, count: 4)
        defer { numbers.deallocate() }
        numbers[0] = UInt64(1) << UInt64(parameters.logN)  // n
        numbers[1] = UInt64(parameters.r)  // r
        numbers[2] = UInt64(parameters.p)  // p
        // What OpenSSL allocates (V: 128 r (N + 2), B: 128 r p) plus a margin for its bookkeeping.
        numbers[3] = blockBytes * (numbers[0] + 2) + blockBytes * numbers[2] + (1 << 20)
        var key = [UInt8](repeating: 0, count: length)
        let names: [CChar] = Array("pass\0salt\0n\0r\0p\0maxmem_bytes\0".utf8CString)
        let status = names.withUnsafeBufferPointer { nameBuffer -> Int32 in
            guard let base = nameBuffer.baseAddress else { return 0 }
            return OpenSSLSupport.withBytes(password) { passwordBytes in
                OpenSSLSupport.withBytes(salt) { saltBytes in
                    var parameterList: [OSSL_PARAM] = [
                        OSSL_PARAM_construct_octet_string(
                            base, UnsafeMutableRawPointer(mutating: passwordBytes.baseAddress), passwordBytes.count),
                        OSSL_PARAM_construct_octet_string(
                            base + 5, UnsafeMutableRawPointer(mutating: saltBytes.baseAddress), saltBytes.count),
                        OSSL_PARAM_construct_uint64(base + 10, numbers),
                        OSSL_PARAM_construct_uint64(base + 12, numbers + 1),
                        OSSL_PARAM_construct_uint64(base + 14, numbers + 2),
                        OSSL_PARAM_construct_uint64(base + 16, numbers + 3),
                        OSSL_PARAM_construct_end(),
                    ]
                    return key.withUnsafeMutableBufferPointer { output in
                        EVP_KDF_derive(context, output.baseAddress, output.count, &parameterList)
                    }
                }
            }
        }
        guard status == 1 else {
            throw .derivationFailed(OpenSSLSupport.lastError())
        }
        return key
    }
}

/// A parsed `$scrypt$...` string.
private struct StoredHash {
    /// Salts and keys outside these lengths are not ours (or are corrupt).
    static let saltLengthRange = 8...64
    static let keyLengthRange = 16...64

    let parameters: ScryptParameters
    let salt: [UInt8]
    let key: [UInt8]

    init?(_ encoded: String) {
        // "", "scrypt", parameters, salt, key
        let fields = encoded.split(separator: "$", omittingEmptySubsequences: false)
        guard fields.count == 5, fields[0].isEmpty, fields[1] == "scrypt",
            let parameters = ScryptParameters(phcParameters: fields[2]),
            let salt = Base64.decodeUnpadded(fields[3]), Self.saltLengthRange.contains(salt.count),
            let key = Base64.decodeUnpadded(fields[4]), Self.keyLengthRange.contains(key.count)
        else { return nil }
        self.parameters = parameters
        self.salt = salt
        self.key = key
    }
}
