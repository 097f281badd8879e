import Shared

/// Timing of the presence registry. A gateway that dies stops refreshing its liveness key; its
/// users are announced offline by another gateway's sweep within `ttl + sweep` (at most 2 × TTL
/// with the defaults: 10 s + 5 s).
struct PresenceConfiguration: Sendable {
    var ttl: Duration = .seconds(10)
    var heartbeatInterval: Duration = .seconds(3)
    var sweepInterval: Duration = .seconds(5)
    /// Whether room members are each other's contacts (the seeds' rule; issue 13 measured it):
    /// every connect is then announced to up to 5,000 room members.
    var roomMembersAreContacts = false

    static let settings: [Setting] = [
        Setting("PRESENCE_TTL_MS", "10000", "lifetime of a gateway's liveness key; its users count as offline once it lapses"),
        Setting("PRESENCE_HEARTBEAT_MS", "3000", "how often a gateway renews its liveness key (at most a third of PRESENCE_TTL_MS)"),
        Setting("PRESENCE_SWEEP_MS", "5000",
                "how often a gateway looks for dead gateways and announces their users offline (offline within TTL + this)"),
        Setting("PRESENCE_ROOM_CONTACTS", "off",
                "on: members of a shared room are contacts too (every connect announced to up to 5,000 of them; small deployments); off: rooms use presence subscriptions"),
    ]

    init() {}

    init(reader: SettingsReader) throws(ConfigurationError) {
        ttl = try reader.milliseconds("PRESENCE_TTL_MS", in: 500...600_000)
        heartbeatInterval = try reader.milliseconds("PRESENCE_HEARTBEAT_MS", in: 100...200_000)
        sweepInterval = try reader.milliseconds("PRESENCE_SWEEP_MS", in: 100...600_000)
        roomMembersAreContacts = try reader.flag("PRESENCE_ROOM_CONTACTS")
        guard heartbeatInterval * 3 <= ttl else {
            throw ConfigurationError("PRESENCE_HEARTBEAT_MS", "must be at most a third of PRESENCE_TTL_MS (\(ttl.wholeMilliseconds)) so one lost renewal is survived")
        }
        guard sweepInterval <= ttl else {
            throw ConfigurationError("PRESENCE_SWEEP_MS", "must be at most PRESENCE_TTL_MS (\(ttl.wholeMilliseconds)) to keep the offline bound within 2 x TTL")
        }
    }
}
