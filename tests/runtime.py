"""Helpers for the runtime tests: cache tables in moto from the real specs, a cache wired to the fake."""
from __future__ import annotations

import boto3

from spotify_playlist.dynamo import LikedSongsStore
from spotify_playlist.liked_songs_cache import LikedSongsCache
from spotify_playlist.spotify import SpotifyClient, SpotifyCredentials

from .conftest import REGION, load_spec


def create_cache_tables(resource=None):
    resource = resource or boto3.resource("dynamodb", region_name=REGION)
    for name in ("liked_songs", "liked_songs_metadata"):
        resource.meta.client.create_table(**load_spec(name))
    return resource


def spotify_client(fake, user, sleeps=None, **kwargs):
    credentials = SpotifyCredentials(refresh_token=f"refresh-{user}")
    return SpotifyClient(credentials, api_base=fake.api_base, accounts_base=fake.url,
                         sleep=(sleeps.append if sleeps is not None else (lambda s: None)), **kwargs)


def make_cache(fake, user, resource=None, sleeps=None, clock=None, **kwargs):
    store = LikedSongsStore(resource or boto3.resource("dynamodb", region_name=REGION), sleep=lambda s: None)
    extra = {"clock": clock} if clock else {}
    return LikedSongsCache(store, spotify_client(fake, user, sleeps), **extra, **kwargs)


def cached_ids(store, user):
    return set(store.track_ids(user))
