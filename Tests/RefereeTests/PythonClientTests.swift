import Foundation
import Testing
import TestSupport

/// Runs the Python client's own unittest suite against the real binary.
@Suite struct PythonClientTests {
    @Test func pythonClientSuitePasses() throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["python3", repositoryRoot.appendingPathComponent("clients/python/tests/test_referee_client.py").path]
        p.currentDirectoryURL = repositoryRoot
        var env = ProcessInfo.processInfo.environment
        env["REFEREE_BIN"] = refereeBinary
        p.environment = env
        let err = Pipe()
        p.standardError = err
        p.standardOutput = FileHandle.nullDevice
        try p.run()
        let output = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        #expect(p.terminationStatus == 0, "\(output.suffix(2000))")
        #expect(output.contains("OK"))
    }
}
