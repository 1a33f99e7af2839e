import Testing
@testable import RPC

/// The socket server's line splitter: lines cut wherever the reads fall, long lines skipped by size, unfinished lines
/// held inside the shared budget and given back.
@Suite struct LineSplitterTests {
    enum Seen: Equatable { case line(String, reserved: Int), oversized(Int), overBudget(Int) }

    static func feed(_ splitter: inout LineSplitter, _ chunks: [String], finish: Bool = false) -> [Seen] {
        var seen: [Seen] = []
        let record: (LineSplitter.Item) -> Void = { item in
            switch item {
            case .line(let bytes, let reserved): seen.append(.line(String(decoding: bytes, as: UTF8.self), reserved: reserved))
            case .oversized(let n): seen.append(.oversized(n))
            case .overBudget(let n): seen.append(.overBudget(n))
            }
        }
        for chunk in chunks { Array(chunk.utf8).withUnsafeBytes { splitter.feed($0, record) } }
        if finish { splitter.finish(record) }
        return seen
    }

    @Test func linesAreCutWhereverTheReadsFall() {
        var splitter = LineSplitter(maxLineBytes: 100, budget: nil)
        #expect(Self.feed(&splitter, ["{\"a\"", ":1}\n{\"b\":2}\r\n{\"c", "\":3}\n\n", "tail"]) ==
                [.line("{\"a\":1}", reserved: 0), .line("{\"b\":2}", reserved: 0), .line("{\"c\":3}", reserved: 0), .line("", reserved: 0)])
        #expect(splitter.holdsPartialLine)
        // The input ends: an unfinished last line is a line, as at the end of a file.
        #expect(Self.feed(&splitter, [], finish: true) == [.line("tail", reserved: 0)])
        #expect(!splitter.holdsPartialLine)
    }

    @Test func aLineOverTheLimitIsSkippedToItsNewlineAndReportedBySize() {
        var splitter = LineSplitter(maxLineBytes: 10, budget: nil)
        let long = String(repeating: "x", count: 8)
        #expect(Self.feed(&splitter, [long, long, long + "\nok\n", String(repeating: "y", count: 11) + "\n"]) ==
                [.oversized(24), .line("ok", reserved: 0), .oversized(11)])
        #expect(!splitter.holdsPartialLine)
    }

    @Test func unfinishedLinesDrawOnTheSharedBudgetAndGiveItBack() {
        let budget = ByteBudget(bytes: 1 << 17)
        let free = LineSplitter.freeBytes
        var first = LineSplitter(maxLineBytes: 1 << 20, budget: budget)
        var second = LineSplitter(maxLineBytes: 1 << 20, budget: budget)
        // The first 64 KiB of a line cost nothing; beyond them the budget is drawn in steps of 64 KiB.
        #expect(Self.feed(&first, [String(repeating: "a", count: free)]).isEmpty)
        #expect(budget.available == 1 << 17)
        #expect(Self.feed(&first, [String(repeating: "a", count: free + 1)]).isEmpty)
        #expect(budget.available == 0)
        // The second connection finds the budget spent: its line is skipped, and says why, once it ends.
        #expect(Self.feed(&second, [String(repeating: "b", count: free + 1)]).isEmpty)
        #expect(Self.feed(&second, ["b\n", "{}\n"]) == [.overBudget(free + 2), .line("{}", reserved: 0)])
        // The first line completes holding its share until it has been answered.
        let done = Self.feed(&first, ["\n"])
        #expect(done == [.line(String(repeating: "a", count: 2 * free + 1), reserved: 1 << 17)])
        budget.give(1 << 17)
        #expect(budget.available == 1 << 17)
        // A connection that ends mid-line gives back what it held.
        _ = Self.feed(&second, [String(repeating: "c", count: free + 10)])
        #expect(budget.available == 1 << 16)
        second.release()
        #expect(budget.available == 1 << 17)
    }
}
