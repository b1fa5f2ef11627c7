/// SplitMix64 (Steele, Lea and Flood, 2014): a small seeded generator, so that reading the same
/// captures again gives the same session ids and transcripts can be compared run to run.
public struct DeterministicRandom: RandomNumberGenerator, Sendable {
    private var state: UInt64

    public init(seed: UInt64) {
        state = seed
    }

    /// Seeds from the names of the inputs (FNV-1a), so different capture sets get different ids.
    public init(seedingFrom names: [String]) {
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        for byte in names.joined(separator: "\u{0}").utf8 {
            hash ^= UInt64(byte)
            hash &*= 0x0000_0100_0000_01B3
        }
        self.init(seed: hash)
    }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
