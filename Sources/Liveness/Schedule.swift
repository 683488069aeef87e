/// One item of a due-time schedule: `key` is due at `instant` if `generation` is still the
/// generation of the key's entry (a rescheduled entry leaves its older items stale, skipped
/// when they come up). Shared by the health checker and the DNS refresher.
struct DueItem<Key>: Comparable {
    var instant: ContinuousClock.Instant
    var key: Key
    var generation: Int
    static func < (lhs: DueItem, rhs: DueItem) -> Bool { lhs.instant < rhs.instant }
    static func == (lhs: DueItem, rhs: DueItem) -> Bool { lhs.instant == rhs.instant && lhs.generation == rhs.generation }
}

/// A binary min-heap.
struct MinHeap<Element: Comparable> {
    private var items: [Element] = []

    var count: Int { items.count }
    func peek() -> Element? { items.first }

    mutating func push(_ element: Element) {
        items.append(element)
        var child = items.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard items[child] < items[parent] else { break }
            items.swapAt(child, parent)
            child = parent
        }
    }

    mutating func pop() -> Element? {
        guard !items.isEmpty else { return nil }
        items.swapAt(0, items.count - 1)
        let top = items.removeLast()
        var parent = 0
        while true {
            let left = 2 * parent + 1
            let right = left + 1
            var smallest = parent
            if left < items.count, items[left] < items[smallest] { smallest = left }
            if right < items.count, items[right] < items[smallest] { smallest = right }
            guard smallest != parent else { break }
            items.swapAt(parent, smallest)
            parent = smallest
        }
        return top
    }
}
