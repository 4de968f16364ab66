/* ipveil proof of work: SHA-256(token + ":" + nonce) with at least d leading zero bits. */
var ipveilPow = (function () {
  "use strict";
  var K = [0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2];
  var H0 = [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19];
  var W = new Int32Array(64);

  // block runs the compression function on the 64 bytes of b at o,
  // updating the eight state words s.
  function block(s, b, o) {
    var i, x, y, t1, t2;
    var a = s[0], c1 = s[1], c2 = s[2], c3 = s[3], e = s[4], f = s[5], g = s[6], h = s[7];
    for (i = 0; i < 16; i++, o += 4) {
      W[i] = b[o] << 24 | b[o + 1] << 16 | b[o + 2] << 8 | b[o + 3];
    }
    for (; i < 64; i++) {
      x = W[i - 15];
      y = W[i - 2];
      W[i] = ((x >>> 7 | x << 25) ^ (x >>> 18 | x << 14) ^ x >>> 3) +
        ((y >>> 17 | y << 15) ^ (y >>> 19 | y << 13) ^ y >>> 10) + W[i - 7] + W[i - 16] | 0;
    }
    for (i = 0; i < 64; i++) {
      t1 = h + ((e >>> 6 | e << 26) ^ (e >>> 11 | e << 21) ^ (e >>> 25 | e << 7)) +
        (e & f ^ ~e & g) + K[i] + W[i] | 0;
      t2 = ((a >>> 2 | a << 30) ^ (a >>> 13 | a << 19) ^ (a >>> 22 | a << 10)) +
        (a & c1 ^ a & c2 ^ c1 & c2) | 0;
      h = g; g = f; f = e; e = c3 + t1 | 0;
      c3 = c2; c2 = c1; c1 = a; a = t1 + t2 | 0;
    }
    s[0] = s[0] + a | 0; s[1] = s[1] + c1 | 0; s[2] = s[2] + c2 | 0; s[3] = s[3] + c3 | 0;
    s[4] = s[4] + e | 0; s[5] = s[5] + f | 0; s[6] = s[6] + g | 0; s[7] = s[7] + h | 0;
  }

  // hasher hashes the whole 64-byte blocks of an ASCII prefix once and
  // returns a function giving the digest words of prefix + suffix, for
  // ASCII suffixes of at most 55 characters.
  function hasher(prefix) {
    var n = prefix.length, full = n - n % 64, s = new Int32Array(H0), b = new Uint8Array(128);
    var t = new Int32Array(8), i;
    for (i = 0; i < full; i++) {
      b[i & 63] = prefix.charCodeAt(i);
      if ((i & 63) === 63) block(s, b, 0);
    }
    var tail = n - full;
    for (i = 0; i < tail; i++) b[i] = prefix.charCodeAt(full + i);
    return function (suffix) {
      var L = tail, m = suffix.length, j, end, bits = (n + m) * 8;
      for (j = 0; j < m; j++) b[L++] = suffix.charCodeAt(j);
      b[L++] = 0x80;
      end = L > 56 ? 128 : 64;
      while (L < end - 4) b[L++] = 0;
      b[end - 4] = bits >>> 24; b[end - 3] = bits >>> 16; b[end - 2] = bits >>> 8; b[end - 1] = bits;
      t.set(s);
      block(t, b, 0);
      if (end > 64) block(t, b, 64);
      return t;
    };
  }

  // solver returns step(count): it tries the next count nonces (0, 1, 2,
  // … in decimal) and returns the first that solves the puzzle, or null.
  function solver(token, d) {
    var h = hasher(token + ":"), limit = Math.pow(2, 32 - d), n = 0;
    return function (count) {
      for (var end = n + count; n < end; n++) {
        if (h(String(n))[0] >>> 0 < limit) return String(n++);
      }
      return null;
    };
  }

  // digest returns the hex SHA-256 of ASCII prefix + suffix (suffix
  // optional, at most 55 characters).
  function digest(prefix, suffix) {
    var w = hasher(prefix)(suffix || ""), out = "", i;
    for (i = 0; i < 8; i++) out += ((w[i] >>> 0) + 0x100000000).toString(16).slice(1);
    return out;
  }

  return { solver: solver, digest: digest };
})();
