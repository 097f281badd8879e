import HTTP
import Support

extension HTTPServerConfiguration {
    /// The admin server of a process (`/metrics`, `/health`, `/ready`) from `ADMIN_HOST` and
    /// `ADMIN_PORT`: few connections and tiny bodies, since only probes and scrapers talk to it.
    package static func admin(reader: SettingsReader) throws(ConfigurationError) -> HTTPServerConfiguration {
        var admin = HTTPServerConfiguration()
        admin.host = try reader.string("ADMIN_HOST")
        admin.port = UInt16(try reader.int("ADMIN_PORT", in: 0...65535))
        admin.maxConnections = 64
        admin.parserLimits.maxBodyBytes = 4096
        return admin
    }
}
