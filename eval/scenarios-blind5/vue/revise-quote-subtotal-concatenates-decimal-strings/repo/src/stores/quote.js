import { defineStore } from 'pinia'
import { api } from '@/api'

/**
 * @typedef {Object} QuoteLine
 * @property {number} id
 * @property {string} description
 * @property {number} quantity
 * @property {string} unit_price  decimal string as serialized by the API, e.g. "129.90"
 * @property {string} line_total  decimal string, quantity * unit_price rounded by the API
 */

export const useQuoteStore = defineStore('quote', {
  state: () => ({
    /** @type {null | { id: number, number: string, currency: string, discount_percent: string, subtotal: string, total: string }} */
    quote: null,
    /** @type {QuoteLine[]} */
    lines: [],
    saving: false,
  }),

  getters: {
    // Computed here so the summary follows the quantity inputs without a round trip;
    // the API recalculates the stored totals on save.
    subtotal: (state) => state.lines.reduce((sum, line) => sum + line.line_total, 0),
    discountAmount() {
      if (!this.quote) return 0
      return (this.subtotal * Number(this.quote.discount_percent)) / 100
    },
    total() {
      return this.subtotal - this.discountAmount
    },
  },

  actions: {
    async load(id) {
      const { data } = await api.get(`/quotes/${id}/`)
      const { lines, ...quote } = data
      this.quote = quote
      this.lines = lines
    },

    async setQuantity(lineId, quantity) {
      const line = this.lines.find((l) => l.id === lineId)
      if (!line) return
      const previous = { quantity: line.quantity, line_total: line.line_total }
      line.quantity = quantity
      line.line_total = (quantity * Number(line.unit_price)).toFixed(2)

      this.saving = true
      try {
        await api.patch(`/quotes/${this.quote.id}/lines/${lineId}/`, { quantity })
      } catch (error) {
        Object.assign(line, previous)
        throw error
      } finally {
        this.saving = false
      }
    },

    async removeLine(lineId) {
      await api.delete(`/quotes/${this.quote.id}/lines/${lineId}/`)
      this.lines = this.lines.filter((l) => l.id !== lineId)
    },
  },
})
