"""The Spotify client against the fake Spotify server over real HTTP."""
from __future__ import annotations

import pytest

from spotify_playlist.spotify import SpotifyClient, SpotifyCredentials, SpotifyError

from .runtime import spotify_client


def test_token_is_refreshed_on_first_use_and_on_401(fake_spotify):
    fake_spotify.add_user("alice", 3)
    client = spotify_client(fake_spotify, "alice")
    assert client.saved_tracks_page()["total"] == 3
    assert fake_spotify.calls["/api/token"] == 1
    client.credentials.access_token = "expired"
    assert client.saved_tracks_page()["total"] == 3
    assert fake_spotify.calls["/api/token"] == 2


def test_paging_follows_next_until_the_end(fake_spotify):
    fake_spotify.add_user("alice", 101)
    pages = list(spotify_client(fake_spotify, "alice").saved_track_pages())
    assert [len(p["items"]) for p in pages] == [50, 50, 1]
    assert pages[-1]["next"] is None


def test_contains_asks_50_ids_a_call(fake_spotify):
    fake_spotify.add_user("alice", 120)
    ids = fake_spotify.saved_ids("alice")
    fake_spotify.remove_tracks("alice", ids[100:102])
    answers = spotify_client(fake_spotify, "alice").contains(ids)
    assert fake_spotify.calls["/v1/me/tracks/contains"] == 3
    assert [i for i, saved in zip(ids, answers, strict=True) if not saved] == ids[100:102]


def test_server_errors_are_retried_with_backoff(fake_spotify):
    fake_spotify.add_user("alice", 2)
    sleeps = []
    client = spotify_client(fake_spotify, "alice", sleeps=sleeps)
    fake_spotify.fail_next(503, times=2)
    assert client.saved_tracks_page()["total"] == 2
    assert sleeps == [0.5, 1.0]


def test_retries_give_up_with_a_message_without_tokens(fake_spotify):
    fake_spotify.add_user("alice", 2)
    client = spotify_client(fake_spotify, "alice", max_retries=2)
    client.refresh_access_token()
    fake_spotify.fail_next(500, times=10)
    with pytest.raises(SpotifyError) as raised:
        client.saved_tracks_page()
    assert str(raised.value) == "GET /me/tracks failed: HTTP 500 injected"
    assert "access-alice" not in str(raised.value) and "refresh-alice" not in str(raised.value)


def test_bad_refresh_token_is_a_clear_error(fake_spotify):
    client = SpotifyClient(SpotifyCredentials(refresh_token="nope"), api_base=fake_spotify.api_base,
                           accounts_base=fake_spotify.url)
    with pytest.raises(SpotifyError, match="token refresh failed: HTTP 400 Invalid refresh token"):
        client.saved_tracks_page()


def test_unreachable_spotify_is_a_clear_error():
    client = SpotifyClient(SpotifyCredentials(access_token="x"), api_base="http://127.0.0.1:9/v1",
                           max_retries=1, sleep=lambda s: None)
    with pytest.raises(SpotifyError, match="GET http://127.0.0.1:9/v1/me/tracks failed"):
        client.saved_tracks_page()
