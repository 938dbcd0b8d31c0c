"""Video ads: an ad catalog, P(engage | person, ad, context video) × bid, and the rules every
served ad obeys (flight dates, targeting, brand safety, frequency caps, pacing). docs/ads.md."""
