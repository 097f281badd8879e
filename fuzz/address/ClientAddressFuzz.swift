// libFuzzer target for the client-address parsers fed by untrusted headers: IP address text,
// networks, and `ClientAddress.resolve` over X-Forwarded-For lines. Invariants: a parsed
// address prints in a form that parses back to the same address; resolve returns the peer or one
// of the header's entries (normalised), never anything else. Built by fuzz/run-address-fuzz.sh.

@testable import HTTP
@testable import Support

private let trusted: TrustedProxies = {
    (try? TrustedProxies(parsing: "127.0.0.1, 10.0.0.0/8, fd00::/8, ::1")) ?? .none
}()

/// An entry without the spaces and tabs around it, as X-Forwarded-For lists are written.
private func trimmed(_ entry: Substring) -> Substring {
    var slice = entry
    while let first = slice.first, first == " " || first == "\t" { slice.removeFirst() }
    while let last = slice.last, last == " " || last == "\t" { slice.removeLast() }
    return slice
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafeRawPointer, _ size: Int) -> CInt {
    let input = UnsafeRawBufferPointer(start: data, count: size)
    let text = String(decoding: input, as: UTF8.self)

    // Every line as an address and as a network: canonical text round-trips.
    for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
        if let address = IPAddressBytes(line) {
            guard IPAddressBytes(address.description) == address else { fatalError("address does not round-trip: \(line)") }
        }
        if let network = IPNetwork(String(line)) {
            guard network.contains(network.base) else { fatalError("a network does not contain its base: \(line)") }
        }
    }

    // First line: the peer; the rest: X-Forwarded-For lines.
    let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
    let peer = lines.first ?? ""
    let forwarded = Array(lines.dropFirst())
    let client = ClientAddress.resolve(peer: peer, forwardedFor: forwarded, trusted: trusted)
    let untrustedClient = ClientAddress.resolve(peer: peer, forwardedFor: forwarded, trusted: .none)
    let candidates = Set([peer] + forwarded.flatMap { $0.split(separator: ",").compactMap { ClientAddress.forwardedAddress(trimmed($0)).map(\.description) } })
    let normalisedPeer = IPAddressBytes(peer)?.description ?? peer
    guard untrustedClient == normalisedPeer || untrustedClient == peer else { fatalError("an untrusted peer's XFF was used") }
    guard client == normalisedPeer || client == peer || candidates.contains(client) else {
        fatalError("resolve invented an address: \(client)")
    }
    return 0
}
