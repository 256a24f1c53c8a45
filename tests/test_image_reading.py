"""Image reading: the format from the content, the channel axis from the TIFF tags,
one frame per file, EXIF orientation, and every bad pixel type named with its file."""
import numpy as np
import pytest
import tifffile
from PIL import Image, ImageOps

from gattn_mm.datasets.transforms import ImageReadError, read_image
from gattn_mm.datasets.transforms import image_reading
from gattn_mm.datasets.transforms.loading import to_rgb_uint8

RNG = np.random.default_rng(0)


def gray_alpha_tiff(path, h, w, alpha=True):
    """A contiguous gray + extra-sample TIFF; the extra sample marked as alpha or not."""
    data = RNG.integers(0, 256, (h, w, 2), dtype=np.uint8)
    tifffile.imwrite(path, data, photometric='minisblack', planarconfig='contig',
                     extrasamples=['unassalpha' if alpha else 'unspecified'])
    return data


def test_failures_while_converting_name_the_file(tmp_path, monkeypatch):
    tifffile.imwrite(tmp_path / 'complex.tif', np.ones((8, 9), np.complex64))
    with pytest.raises(ImageReadError, match=r'complex.tif: pixels of dtype complex64 are '
                                             r'not read; expected bool, unsigned or signed'):
        read_image(str(tmp_path / 'complex.tif'))
    with pytest.raises(ImageReadError, match='<array>: pixels of dtype <U1'):
        to_rgb_uint8(np.full((4, 4), 'a'))

    def broken(*args, **kwargs):
        raise ValueError('boom')
    monkeypatch.setattr(image_reading, 'to_rgb_uint8', broken)
    Image.new('L', (5, 4)).save(tmp_path / 'ok.png')
    with pytest.raises(ImageReadError, match=r'cannot read image .*ok.png: ValueError: boom'):
        read_image(str(tmp_path / 'ok.png'))


@pytest.mark.parametrize('h, w', [(3, 200), (4, 256), (1, 30), (128, 128)])
def test_gray_alpha_tiffs_of_any_height_are_gray(tmp_path, h, w):
    data = gray_alpha_tiff(tmp_path / 'la.tif', h, w)
    out = read_image(str(tmp_path / 'la.tif'))
    assert out.shape == (h, w, 3)
    assert all(np.array_equal(out[..., c], data[..., 0]) for c in range(3))


def test_gray_alpha_tiff_and_png_agree(tmp_path):
    data = gray_alpha_tiff(tmp_path / 'la.tif', 20, 30)
    Image.fromarray(data, 'LA').save(tmp_path / 'la.png')
    assert np.array_equal(read_image(str(tmp_path / 'la.tif')),
                          read_image(str(tmp_path / 'la.png')))


def test_channel_axis_comes_from_the_tiff_tags(tmp_path):
    rgb = RNG.integers(0, 256, (3, 300, 3), dtype=np.uint8)  # an RGB image 3 px high
    tifffile.imwrite(tmp_path / 'rgb_h3.tif', rgb, photometric='rgb')
    assert np.array_equal(read_image(str(tmp_path / 'rgb_h3.tif')), rgb)
    planar = RNG.integers(0, 256, (3, 4, 300), dtype=np.uint8)  # SYX, 4 px high
    tifffile.imwrite(tmp_path / 'planar.tif', planar, photometric='rgb',
                     planarconfig='separate')
    assert np.array_equal(read_image(str(tmp_path / 'planar.tif')), planar.transpose(1, 2, 0))
    five = RNG.integers(0, 256, (4, 256, 5), dtype=np.uint8)  # 5 samples, not (4, H, W)
    tifffile.imwrite(tmp_path / 'c5_h4.tif', five, photometric='minisblack',
                     planarconfig='contig')
    with pytest.raises(ImageReadError, match=r'c5_h4.tif: expected .* got shape \(4, 256, 5\)'):
        read_image(str(tmp_path / 'c5_h4.tif'))
    gray_alpha_tiff(tmp_path / 'two.tif', 4, 300, alpha=False)
    with pytest.raises(ImageReadError, match='two.tif: 2 channels, the second not marked '
                                             'as alpha'):
        read_image(str(tmp_path / 'two.tif'))


def test_arrays_without_tags_keep_a_conservative_rule():
    chw = RNG.integers(0, 256, (3, 20, 30), dtype=np.uint8)
    assert np.array_equal(to_rgb_uint8(chw), chw.transpose(1, 2, 0))  # plainly channel-first
    hw2 = RNG.integers(0, 256, (3, 200, 2), dtype=np.uint8)  # could be channels: last wins
    assert np.array_equal(to_rgb_uint8(hw2), np.repeat(hw2[..., :1], 3, -1))
    hw3 = RNG.integers(0, 256, (3, 20, 3), dtype=np.uint8)
    assert np.array_equal(to_rgb_uint8(hw3), hw3)
    assert to_rgb_uint8(chw[..., :4], channels_last=True).shape == (3, 20, 3)


def frames(n, size=(30, 20)):
    return [Image.fromarray(np.full(size[::-1], 60 * i, np.uint8)) for i in range(n)]


@pytest.mark.parametrize('name, fmt', [('anim.gif', 'GIF'), ('anim.png', 'PNG'),
                                       ('anim.webp', 'WEBP')])
def test_animated_images_are_refused(tmp_path, name, fmt):
    first, *rest = frames(3)
    first.save(tmp_path / name, save_all=True, append_images=rest)
    with pytest.raises(ImageReadError, match=f'{name}: an animated {fmt} of 3 frames'):
        read_image(str(tmp_path / name))
    first.save(tmp_path / f'one_{name}')  # one frame: read
    assert read_image(str(tmp_path / f'one_{name}')).shape == (20, 30, 3)


def test_format_is_read_from_the_content_not_the_name(tmp_path):
    stack = RNG.integers(0, 256, (4, 64, 64), dtype=np.uint8)
    tifffile.imwrite(tmp_path / 'stack_named.png', stack, photometric='minisblack')
    with pytest.raises(ImageReadError, match=r'stack_named.png: a TIFF stack .* 4 pages'):
        read_image(str(tmp_path / 'stack_named.png'))
    tifffile.imwrite(tmp_path / 'gray_named.jpg', stack[0])
    assert np.array_equal(read_image(str(tmp_path / 'gray_named.jpg'))[..., 1], stack[0])
    Image.fromarray(stack[0]).save(tmp_path / 'png_named.tif', format='PNG')
    assert np.array_equal(read_image(str(tmp_path / 'png_named.tif'))[..., 0], stack[0])


EPS = """%!PS-Adobe-3.0 EPSF-3.0
%%BoundingBox: 0 0 10 10
%%EndComments
newpath 0 0 moveto 10 10 lineto stroke
showpage
%%EOF
"""


def test_only_raster_formats_reach_a_decoder(tmp_path, monkeypatch):
    """An EPS named x.png is refused from its signature: Ghostscript never runs."""
    from PIL import EpsImagePlugin
    ran = []
    monkeypatch.setattr(EpsImagePlugin, 'Ghostscript', lambda *a, **k: ran.append(a))
    (tmp_path / 'x.png').write_text(EPS)
    with pytest.raises(ImageReadError, match=r'x.png: its content is EPS; gattn-mm reads '
                                             r'TIFF and PNG, JPEG, BMP, GIF, WEBP'):
        read_image(str(tmp_path / 'x.png'))
    assert not ran
    (tmp_path / 'empty.jpg').write_bytes(b'')
    (tmp_path / 'text.bmp').write_bytes(b'hello world, no image')
    with pytest.raises(ImageReadError, match='empty.jpg: the file is empty'):
        read_image(str(tmp_path / 'empty.jpg'))
    with pytest.raises(ImageReadError, match='text.bmp: its content is no image format'):
        read_image(str(tmp_path / 'text.bmp'))
    Image.new('RGB', (30, 20)).save(tmp_path / 'x.ppm')  # a format Pillow reads, not us
    with pytest.raises(ImageReadError, match='x.ppm: its content is PPM'):
        read_image(str(tmp_path / 'x.ppm'))
    first, second = frames(2)  # MPO: a JPEG and its previews, read as the JPEG
    first.convert('RGB').save(tmp_path / 'x.mpo', format='MPO', save_all=True,
                              append_images=[second.convert('RGB')])
    assert read_image(str(tmp_path / 'x.mpo')).shape == (20, 30, 3)
    for fmt in ('PNG', 'JPEG', 'BMP', 'GIF', 'WEBP'):
        first.save(tmp_path / 'one', format=fmt)
        assert read_image(str(tmp_path / 'one')).shape == (20, 30, 3), fmt


def test_tiff_of_several_images_is_refused(tmp_path):
    first, rest = frames(1)[0], [Image.fromarray(np.zeros((13, 7), np.uint8))]  # 2 series
    first.save(tmp_path / 'two.tif', save_all=True, append_images=rest)
    with pytest.raises(ImageReadError, match=r'two.tif: a TIFF of 2 images \(2 pages\)'):
        read_image(str(tmp_path / 'two.tif'))
    with tifffile.TiffWriter(tmp_path / 'pyramid.tif') as tif:  # levels: read level 0
        tif.write(np.full((64, 64), 9, np.uint8), subifds=1)
        tif.write(np.full((32, 32), 9, np.uint8), subfiletype=1)
    assert read_image(str(tmp_path / 'pyramid.tif')).shape == (64, 64, 3)


def test_exif_orientation_is_applied(tmp_path):
    stored = np.full((64, 128), 255, np.uint8)
    stored[:, :64] = 0  # left half dark as stored; orientation 6: rotate 90 clockwise
    im = Image.fromarray(stored)
    exif = im.getexif()
    exif[0x0112] = 6
    im.save(tmp_path / 'exif6.jpg', exif=exif.tobytes())
    out = read_image(str(tmp_path / 'exif6.jpg'))
    assert out.shape == (128, 64, 3)  # as a viewer (and cv2/mmcv.imread) shows it
    assert out[:60].mean() < 20 and out[68:].mean() > 235  # the dark half on top
    with Image.open(tmp_path / 'exif6.jpg') as im:
        expected = np.asarray(ImageOps.exif_transpose(im).convert('RGB'))
    assert np.array_equal(out, expected)


def test_signed_integers(tmp_path):
    neg = np.arange(-8000, 8000, 25, dtype=np.int16).reshape(20, 32)
    tifffile.imwrite(tmp_path / 'i16neg.tif', neg)
    with pytest.raises(ImageReadError, match=r'i16neg.tif: int16 with negative values '
                                             r'\(min -8000\); expected values >= 0'):
        read_image(str(tmp_path / 'i16neg.tif'))
    small = np.arange(640, dtype=np.int16).reshape(20, 32) % 256  # <= 255: as is
    tifffile.imwrite(tmp_path / 'i16.tif', small)
    assert np.array_equal(read_image(str(tmp_path / 'i16.tif'))[..., 0], small)
    big = small.astype(np.int32) * 100  # above 255: by the image's maximum
    assert to_rgb_uint8(big)[..., 0].max() == 255
