// `import Shared` gives the programs (Gateway, MessageWorker, tools) every layer at once. Inside
// Sources/Shared each layer imports only the layers below it; the build (one target per layer)
// and scripts/check-layers enforce that order. See docs/ARCHITECTURE.md, "Layers".
@_exported import API
@_exported import Chat
@_exported import HTTP
@_exported import JSON
@_exported import Postgres
@_exported import RateLimit
@_exported import Redis
@_exported import Runtime
@_exported import Security
@_exported import Service
@_exported import SocketIO
@_exported import Support
@_exported import WebSocket
