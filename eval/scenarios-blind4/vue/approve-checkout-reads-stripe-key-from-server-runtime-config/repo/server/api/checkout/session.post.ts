import Stripe from "stripe";

import { loadCartForUser } from "~/server/utils/cart";

// Creates a Stripe Checkout session for the signed-in user's cart. Prices come from our database,
// never from the request body, and the secret key only exists in this server route.
export default defineEventHandler(async (event) => {
  const { user } = await requireUserSession(event);
  const config = useRuntimeConfig(event);

  const cart = await loadCartForUser(user.id);
  if (cart.items.length === 0) {
    throw createError({ statusCode: 400, statusMessage: "Cart is empty" });
  }

  const stripe = new Stripe(config.stripeSecretKey);
  const session = await stripe.checkout.sessions.create({
    mode: "payment",
    customer_email: user.email,
    client_reference_id: String(cart.id),
    line_items: cart.items.map((item) => ({
      quantity: item.quantity,
      price_data: {
        currency: cart.currency,
        unit_amount: item.unitPriceCents,
        product_data: { name: item.productName },
      },
    })),
    success_url: `${config.public.siteUrl}/orders/thanks?session_id={CHECKOUT_SESSION_ID}`,
    cancel_url: `${config.public.siteUrl}/cart`,
  });

  return { url: session.url };
});
