import type { Metadata } from "next";
import { notFound } from "next/navigation";

import { AddToCartButton } from "@/components/cart/AddToCartButton";
import { ProductGallery } from "@/components/product/ProductGallery";
import { getProductBySlug } from "@/lib/catalog";
import { formatPrice } from "@/lib/money";
import { serializeJsonLd } from "@/lib/seo/jsonLd";

type PageProps = { params: Promise<{ slug: string }> };

export async function generateMetadata({ params }: PageProps): Promise<Metadata> {
  const { slug } = await params;
  const product = await getProductBySlug(slug);
  return product ? { title: product.name, description: product.summary } : {};
}

export default async function ProductPage({ params }: PageProps) {
  const { slug } = await params;
  const product = await getProductBySlug(slug);
  if (!product) notFound();

  const productJsonLd = {
    "@context": "https://schema.org",
    "@type": "Product",
    name: product.name,
    description: product.summary,
    sku: product.sku,
    image: product.images.map((image) => image.url),
    offers: {
      "@type": "Offer",
      price: (product.priceCents / 100).toFixed(2),
      priceCurrency: product.currency,
      availability: product.inStock ? "https://schema.org/InStock" : "https://schema.org/OutOfStock",
    },
  };

  return (
    <main className="mx-auto max-w-5xl px-4 py-10">
      <script
        type="application/ld+json"
        dangerouslySetInnerHTML={{ __html: serializeJsonLd(productJsonLd) }}
      />
      <div className="grid gap-10 md:grid-cols-2">
        <ProductGallery images={product.images} alt={product.name} />
        <section>
          <h1 className="text-3xl font-semibold">{product.name}</h1>
          <p className="mt-2 text-xl">{formatPrice(product.priceCents, product.currency)}</p>
          <p className="mt-6 whitespace-pre-line text-neutral-700">{product.description}</p>
          <AddToCartButton productId={product.id} disabled={!product.inStock} />
        </section>
      </div>
    </main>
  );
}
