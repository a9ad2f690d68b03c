// js-ipfs 0.66 calls Promise.withResolvers, which Node 20 lacks; loaded with NODE_OPTIONS=--require.
if (typeof Promise.withResolvers !== 'function') {
  Object.defineProperty(Promise, 'withResolvers', {
    configurable: true,
    writable: true,
    value: function withResolvers () {
      const out = {}
      out.promise = new this((resolve, reject) => {
        out.resolve = resolve
        out.reject = reject
      })
      return out
    }
  })
}
