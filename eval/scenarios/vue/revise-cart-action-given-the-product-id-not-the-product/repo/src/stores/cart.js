import { defineStore } from "pinia";

export const useCartStore = defineStore("cart", {
  state: () => ({ lines: [] }),
  getters: {
    totalCents: (state) => state.lines.reduce((sum, l) => sum + l.priceCents * l.quantity, 0),
  },
  actions: {
    /** product: the catalogue object ({ id, name, priceCents }), not its id. */
    addItem(product, quantity = 1) {
      const line = this.lines.find((l) => l.productId === product.id);
      if (line) line.quantity += quantity;
      else this.lines.push({ productId: product.id, name: product.name, priceCents: product.priceCents, quantity });
    },
  },
});
