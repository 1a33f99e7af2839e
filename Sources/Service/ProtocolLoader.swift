public import Foundation
public import Registry
import JSONCore
import Warehouse

/// Finds and loads protocol files: `--protocols DIR`, else `$REFEREE_PROTOCOLS`, else `./Protocols`,
/// else the copies built into the binary.
public enum ProtocolLoader {
    public struct LoadError: Error, CustomStringConvertible {
        public var description: String
    }

    public static func resolve(explicit: String?, environment: [String: String] = ProcessInfo.processInfo.environment) throws(LoadError) -> ProtocolSet {
        if let dir = explicit ?? environment["REFEREE_PROTOCOLS"] {
            return try load(directory: dir)
        }
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: "Protocols/metrics.json", isDirectory: &isDir) {
            return try load(directory: "Protocols")
        }
        return try builtIn()
    }

    /// Loads every `*.json` protocol file of a directory plus its `metrics.json` catalog.
    public static func load(directory: String) throws(LoadError) -> ProtocolSet {
        let url = URL(fileURLWithPath: directory)
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: directory).sorted()
        } catch {
            throw LoadError(description: "cannot read protocols directory \(directory): \(error.localizedDescription)")
        }
        var files: [String: String] = [:]
        for name in names where name.hasSuffix(".json") {
            do {
                files[name] = try String(contentsOf: url.appendingPathComponent(name), encoding: .utf8)
            } catch {
                throw LoadError(description: "cannot read \(directory)/\(name): \(error.localizedDescription)")
            }
        }
        return try assemble(files, origin: url.standardizedFileURL.path)
    }

    public static func builtIn() throws(LoadError) -> ProtocolSet {
        try assemble(BuiltinProtocols.files, origin: "built-in")
    }

    /// Files named `metrics.json` (the catalog), `warehouse.json` (the warehouse definitions, every problem reported at
    /// once) and `*.schema.json` (schemas) are not protocols.
    static func assemble(_ files: [String: String], origin: String) throws(LoadError) -> ProtocolSet {
        guard let catalogText = files["metrics.json"] else {
            throw LoadError(description: "\(origin) has no metrics.json catalog")
        }
        let catalog: MetricsCatalog
        do { catalog = try MetricsCatalog.parse(catalogText) } catch {
            throw LoadError(description: "\(origin)/metrics.json: \(error)")
        }
        var protocols: [String: ExperimentProtocol] = [:]
        for (name, text) in files.sorted(by: { $0.key < $1.key }) where name != "metrics.json" && name != WarehouseDefinitions.fileName && !name.hasSuffix(".schema.json") {
            do {
                let p = try ExperimentProtocol.parse(text, fileName: name)
                guard name == "\(p.name).json" else {
                    throw LoadError(description: "\(origin)/\(name) declares name \"\(p.name)\"; rename the file to \(p.name).json")
                }
                protocols[p.name] = p
            } catch let e as LoadError {
                throw e
            } catch {
                throw LoadError(description: "\(origin)/\(name): \(error)")
            }
        }
        guard !protocols.isEmpty else { throw LoadError(description: "\(origin) holds no protocol files") }
        if let text = files[WarehouseDefinitions.fileName], case .failure(let problems) = WarehouseDefinitions.parse(text, catalog: catalog) {
            throw LoadError(description: "\(origin)/\(problems)")
        }
        return ProtocolSet(protocols: protocols, catalog: catalog, origin: origin, warehouseText: files[WarehouseDefinitions.fileName])
    }
}
