import { z } from 'zod'
import type { AddressSuggestion } from '~/types/address'

const querySchema = z.object({
  q: z.string().trim().min(3).max(120),
})

interface MapboxFeature {
  id: string
  geometry: { coordinates: [number, number] }
  properties: { full_address: string }
}

export default defineEventHandler(async (event): Promise<AddressSuggestion[]> => {
  await requireUserSession(event)
  const { q } = await getValidatedQuery(event, querySchema.parse)
  const { mapboxToken } = useRuntimeConfig(event)

  let res: { features: MapboxFeature[] }
  try {
    res = await $fetch('/search/geocode/v6/forward', {
      baseURL: 'https://api.mapbox.com',
      query: { q, access_token: mapboxToken, limit: 5, types: 'address', country: 'de,at,ch' },
      timeout: 4000,
    })
  } catch (error: any) {
    console.warn('mapbox geocoding failed', error?.statusCode ?? error?.name)
    throw createError({ statusCode: 502, statusMessage: 'Address lookup is unavailable' })
  }

  return res.features.map((f) => ({
    id: f.id,
    label: f.properties.full_address,
    lng: f.geometry.coordinates[0],
    lat: f.geometry.coordinates[1],
  }))
})
