/// The XOR masking of RFC 6455 §5.3, applied eight bytes at a time.
///
/// Masking is its own inverse, so the same routine masks outgoing and unmasks incoming payloads. A
/// payload may be processed in pieces: `offset` is the position of the piece within the frame
/// payload, which decides where in the 4-byte key the piece starts.
enum WebSocketMasking {
    /// The key's four bytes in wire order packed as `k0 | k1 << 8 | k2 << 16 | k3 << 24`.
    static func key(_ k0: UInt8, _ k1: UInt8, _ k2: UInt8, _ k3: UInt8) -> UInt32 {
        UInt32(k0) | UInt32(k1) << 8 | UInt32(k2) << 16 | UInt32(k3) << 24
    }

    /// XORs `bytes` in place with `key` (packed by `key(_:_:_:_:)`), as if they started at payload
    /// position `offset`.
    static func apply(key: UInt32, offset: Int, to bytes: UnsafeMutableRawBufferPointer) {
        let count = bytes.count
        guard count > 0, let base = bytes.baseAddress else { return }
        // The key as it lies in memory, rotated so that its byte for position `offset` comes first;
        // loading memory order into an integer keeps byte i of the word at memory byte i.
        let rotation = UInt32((offset & 3) * 8)
        let rotated = rotation == 0 ? key : (key >> rotation | key << (32 - rotation))
        let key32 = UInt32(littleEndian: rotated)
        let key64 = UInt64(key32) | UInt64(key32) << 32
        var index = 0
        while index + 8 <= count {
            let word = base.loadUnaligned(fromByteOffset: index, as: UInt64.self)
            base.storeBytes(of: word ^ key64, toByteOffset: index, as: UInt64.self)
            index += 8
        }
        var keyBytes = key32.littleEndian
        while index < count {
            let byte = base.load(fromByteOffset: index, as: UInt8.self)
            base.storeBytes(of: byte ^ UInt8(truncatingIfNeeded: keyBytes), toByteOffset: index, as: UInt8.self)
            keyBytes = keyBytes >> 8 | keyBytes << 24
            index += 1
        }
    }
}
