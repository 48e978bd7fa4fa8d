"""Top-k search over unit vectors: the exact path, and the FAISS index large galleries get."""
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import model.gallery.vector_search as vector_search
from model.gallery.index import Entry, Gallery
from model.gallery.vector_search import VectorSearch


def clustered(n, clusters=20, seed=0):
    """Unit vectors around ``clusters`` centres, and one query near each centre."""
    generator = torch.Generator().manual_seed(seed)
    centres = F.normalize(torch.randn(clusters, 64, generator=generator), dim=1)
    vectors = centres[torch.arange(n) % clusters] + 0.05 * torch.randn(n, 64, generator=generator)
    queries = centres + 0.05 * torch.randn(clusters, 64, generator=generator)
    return F.normalize(vectors, dim=1), F.normalize(queries, dim=1)


def test_exact_search_is_torch_s_top_k():
    vectors, queries = clustered(500)
    search = VectorSearch(vectors, index=False)
    values, rows = search.top_k(queries[3], 7)
    expected = (vectors @ queries[3]).topk(7)
    assert not search.approximate and torch.equal(rows, expected.indices) and torch.equal(values, expected.values)
    assert len(search.top_k(queries[0], 10_000)[1]) == 500


def test_small_collections_are_searched_exactly_by_default():
    assert not VectorSearch(clustered(500)[0]).approximate  # below INDEX_MIN_ROWS


def test_the_index_finds_the_exact_top_ten_of_clustered_vectors():
    pytest.importorskip("faiss")
    vectors, queries = clustered(4000)
    search = VectorSearch(vectors, index=True)
    assert search.approximate
    for query in queries:
        values, rows = search.top_k(query, 10)
        exact = (vectors @ query).topk(10)
        assert set(rows.tolist()) == set(exact.indices.tolist())
        assert torch.allclose(values, exact.values, atol=1e-5)


def test_the_index_returns_at_most_what_there_is():
    pytest.importorskip("faiss")
    vectors, queries = clustered(5)
    values, rows = VectorSearch(vectors, index=True).top_k(queries[0], 10)
    assert sorted(rows.tolist()) == [0, 1, 2, 3, 4] and len(values) == 5


def test_a_large_gallery_is_queried_through_the_index(monkeypatch):
    pytest.importorskip("faiss")
    monkeypatch.setattr(vector_search, "INDEX_MIN_ROWS", 1000)  # "large", at a test's size
    images, queries = clustered(2000)
    sounds = images[torch.randperm(2000, generator=torch.Generator().manual_seed(1))]
    entries = [Entry(f"clip{i}.mp4", 1, 1, None) for i in range(2000)]
    gallery = Gallery(Path("/g"), entries, images, sounds, torch.zeros(2000, 96, 128, 3, dtype=torch.uint8))
    assert gallery.images.approximate and gallery.sounds.approximate
    matches = gallery.images_for_sound(queries[5], k=10)
    assert {m.index for m in matches} == set((images @ queries[5]).topk(10).indices.tolist())
    assert matches[0].file == f"/g/clip{matches[0].index}.mp4"
    matches = gallery.sounds_for_image(queries[7], k=10)
    assert {m.index for m in matches} == set((sounds @ queries[7]).topk(10).indices.tolist())
