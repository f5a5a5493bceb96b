function ipv4ToNumber(ip: string): number | null {
  const parts = ip.split('.')
  if (parts.length !== 4) return null
  let value = 0
  for (const part of parts) {
    if (!/^\d{1,3}$/.test(part)) return null
    const octet = Number(part)
    if (octet > 255) return null
    value = value * 256 + octet
  }
  return value
}

/** True when `ip` (IPv4, or IPv4-mapped IPv6) lies in one of the CIDR ranges. */
export function isIpInCidrs(ip: string, cidrs: string[]): boolean {
  const address = ipv4ToNumber(ip.replace(/^::ffff:/, ''))
  if (address === null) return false
  return cidrs.some((cidr) => {
    const [base, bitsText = '32'] = cidr.trim().split('/')
    const bits = Number(bitsText)
    const network = ipv4ToNumber(base)
    if (network === null || !Number.isInteger(bits) || bits < 0 || bits > 32) return false
    const blockSize = 2 ** (32 - bits)
    return Math.floor(address / blockSize) === Math.floor(network / blockSize)
  })
}
