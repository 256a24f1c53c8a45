"""Every colour model a reader meets is read to the same RGB picture, or refused by
name: CMYK (TIFF, JPEG; with alpha, 16-bit, planar), YCbCr, CIELab / ICCLab, palette
(with alpha), MinIsWhite, gray + alpha, 16-bit and fewer-bit samples, in the image
reader and in the slide reader; a model with no RGB here is refused naming it."""
import cv2
import numpy as np
import pytest
import tifffile
from PIL import Image

from gattn_mm.datasets.slides import SlideError, TiffSlide
from gattn_mm.datasets.transforms import ImageReadError, read_image


def picture():
    """An RGB picture of flat colour patches (JPEG keeps flat colours nearly exact)."""
    colours = np.array([[200, 50, 10], [20, 160, 220], [250, 240, 30], [90, 90, 90],
                        [10, 10, 10], [240, 240, 240], [120, 30, 160], [60, 200, 80]],
                       np.uint8)
    img = np.zeros((32, 64, 3), np.uint8)
    for i, c in enumerate(colours):
        img[(i // 4) * 16:(i // 4 + 1) * 16, (i % 4) * 16:(i % 4 + 1) * 16] = c
    return img


RGB = picture()
GRAY = cv2.cvtColor(RGB, cv2.COLOR_RGB2GRAY)


def cmyk_of(rgb, bits=8):
    """CMYK with black generation (K = 1 - max(R, G, B)), as a press file has it."""
    x = rgb.astype(np.float64) / 255
    k = 1 - x.max(-1, keepdims=True)
    cmy = (1 - x - k) / np.maximum(1 - k, 1e-9)
    top = 2 ** bits - 1
    return (np.concatenate([cmy, k], -1) * top).round().astype(
        np.uint8 if bits == 8 else np.uint16)


def lab_of(rgb, bits=8, signed=True):
    lab = cv2.cvtColor(rgb.astype(np.float32) / 255, cv2.COLOR_RGB2Lab)
    top = 2 ** bits - 1
    light = (lab[..., 0] * top / 100).round()
    ab = lab[..., 1:] * (1 if bits == 8 else 256)
    dtype = np.uint8 if bits == 8 else np.uint16
    if signed:
        ab = ab.round().astype(np.int8 if bits == 8 else np.int16).view(dtype)
    else:
        ab = (ab + 2 ** (bits - 1)).round().astype(dtype)
    return np.dstack([light.astype(dtype), ab])


def ycbcr_of(rgb):
    ycrcb = cv2.cvtColor(rgb, cv2.COLOR_RGB2YCrCb)  # full-range CCIR 601, as TIFF's default
    return ycrcb[..., [0, 2, 1]]


def writers(d):
    """(name, path, tolerance) of the picture written in each colour model."""
    a = np.full(RGB.shape[:2] + (1,), 255, np.uint8)
    palette_index = np.arange(8, dtype=np.uint8).reshape(2, 4).repeat(16, 0).repeat(16, 1)
    colours = RGB[::16, ::16].reshape(8, 3)
    cmap = np.zeros((3, 256), np.uint16)
    cmap[:, :8] = colours.T.astype(np.uint16) * 257
    out = []

    def tif(name, data, tol=2, **kw):
        tifffile.imwrite(d / name, data, **kw)
        out.append((name, d / name, tol))

    def pil(name, image, tol=2, **kw):
        image.save(d / name, **kw)
        out.append((name, d / name, tol))

    tif('rgb.tif', RGB, 0, photometric='rgb')
    tif('cmyk.tif', cmyk_of(RGB), photometric='separated')
    tif('cmyk_alpha.tif', np.dstack([cmyk_of(RGB), a]), photometric='separated',
        extrasamples=['unassalpha'])
    tif('cmyk16.tif', cmyk_of(RGB, 16), photometric='separated')
    tif('cmyk_planar.tif', cmyk_of(RGB).transpose(2, 0, 1).copy(), photometric='separated',
        planarconfig='separate')
    tif('ycbcr.tif', ycbcr_of(RGB), photometric='ycbcr', subsampling=(1, 1))
    tif("cielab.tif", lab_of(RGB), 8, photometric="cielab")  # 8-bit Lab steps: up to 7
    tif('cielab16.tif', lab_of(RGB, 16), 2, photometric='cielab')
    tif('icclab.tif', lab_of(RGB, signed=False), 8, photometric=9)
    tif('palette.tif', palette_index, 0, photometric='palette', colormap=cmap)
    tif('palette8bitmap.tif', palette_index, 0, photometric='palette',
        colormap=(cmap // 257))
    tif('rgb16.tif', RGB.astype(np.uint16) * 257, 0, photometric='rgb')
    pil('pillow_cmyk.tif', Image.fromarray(RGB).convert('CMYK'), format='TIFF')
    pil('pillow_ycbcr.tif', Image.fromarray(RGB).convert('YCbCr'), format='TIFF')
    # Pillow's own RGB -> Lab is approximate (a* off by up to 6 from CIE's): a wider margin
    pil('pillow_lab.tif', Image.fromarray(RGB).convert('LAB'), 24, format='TIFF')
    pil('pillow_palette.tif', Image.fromarray(RGB).quantize(8), format='TIFF')
    pil('cmyk.jpg', Image.fromarray(RGB).convert('CMYK'), 12, format='JPEG', quality=95)
    pil('ycbcr.jpg', Image.fromarray(RGB), 12, format='JPEG', quality=95, subsampling=0)
    pil('palette.png', Image.fromarray(RGB).quantize(8), format='PNG')
    pil('palette_alpha.png', Image.fromarray(RGB).convert('RGBA').quantize(8), format='PNG')
    pil('palette.gif', Image.fromarray(RGB).quantize(8), format='GIF')
    pil('palette.bmp', Image.fromarray(RGB).quantize(8), format='BMP')
    pil('lossless.webp', Image.fromarray(RGB), 0, format='WEBP', lossless=True)
    cv2.imwrite(str(d / 'rgb16.png'), (RGB.astype(np.uint16) * 257)[..., ::-1])
    out.append(('rgb16.png', d / 'rgb16.png', 0))
    cv2.imwrite(str(d / 'rgba16.png'),
                np.dstack([RGB[..., ::-1], a]).astype(np.uint16) * 257)
    out.append(('rgba16.png', d / 'rgba16.png', 0))
    return out


def test_every_colour_model_reads_to_the_same_rgb(tmp_path):
    for name, path, tol in writers(tmp_path):
        got = read_image(str(path)).astype(int)
        err = np.abs(got - RGB.astype(int)).max()
        assert err <= tol, f'{name}: differs from the RGB picture by up to {err}'


def test_gray_models_read_to_the_same_gray(tmp_path):
    tifffile.imwrite(tmp_path / 'white.tif', 255 - GRAY, photometric='miniswhite')
    tifffile.imwrite(tmp_path / 'white16.tif', (255 - GRAY).astype(np.uint16) * 257,
                     photometric='miniswhite')
    tifffile.imwrite(tmp_path / 'white_alpha.tif',
                     np.dstack([255 - GRAY, np.full_like(GRAY, 255)]),
                     photometric='miniswhite', extrasamples=['unassalpha'])
    Image.fromarray(np.dstack([GRAY, GRAY]), 'LA').save(tmp_path / 'la.png')
    Image.fromarray(GRAY).convert('P').save(tmp_path / 'gray.gif')
    Image.fromarray((GRAY.astype(np.uint16) * 257)).save(tmp_path / 'gray16.png')
    for name in ('white.tif', 'white16.tif', 'white_alpha.tif', 'la.png', 'gray.gif',
                 'gray16.png'):
        got = read_image(str(tmp_path / name))
        assert np.array_equal(got, np.dstack([GRAY] * 3)), name
    bits = GRAY > 100  # bilevel, MinIsWhite: 1 is black
    tifffile.imwrite(tmp_path / 'fax.tif', ~bits, photometric='miniswhite')
    assert np.array_equal(read_image(str(tmp_path / 'fax.tif'))[..., 0], bits * 255)


def test_samples_of_fewer_bits_than_their_type_are_widened(tmp_path):
    """A 12-bit TIFF (BitsPerSample 12, stored in uint16) is not read 16x too dark."""
    from gattn_mm.datasets.transforms.tiff_colour import ColourModel, tiff_to_rgb
    model = ColourModel(1, 12, 1, (), 1, 1, None, (0.299, 0.587, 0.114), None)
    gray12 = (GRAY.astype(np.int64) * 4095 // 255).astype(np.uint16)
    widened = tiff_to_rgb(gray12, model)
    assert widened.dtype == np.uint16
    assert np.abs(widened.astype(int) // 257 - GRAY).max() <= 1


@pytest.mark.parametrize('kw, named', [
    (dict(photometric=32803), 'CFA'),  # a raw Bayer mosaic
    (dict(photometric=32844), 'LOGL'),
    (dict(photometric='separated', extratags=[(332, 'H', 1, 2, True)]), 'InkSet 2'),
])
def test_other_colour_models_are_refused_by_name(tmp_path, kw, named):
    data = GRAY if kw['photometric'] not in ('separated',) else cmyk_of(RGB)
    tifffile.imwrite(tmp_path / 'x.tif', data, **kw)
    with pytest.raises(ImageReadError, match=f'x.tif: .*{named}'):
        read_image(str(tmp_path / 'x.tif'))


def test_a_separated_tiff_of_three_inks_is_refused(tmp_path):
    tifffile.imwrite(tmp_path / 'cmy.tif', cmyk_of(RGB)[..., :3], photometric='rgb')
    with tifffile.TiffFile(tmp_path / 'cmy.tif', mode='r+') as tif:  # tifffile won't write it
        tif.pages[0].tags['PhotometricInterpretation'].overwrite(5)
    with pytest.raises(ImageReadError, match='cmy.tif: a CMYK TIFF of 3 colour samples'):
        read_image(str(tmp_path / 'cmy.tif'))


def pyramid(path, levels, **kw):
    with tifffile.TiffWriter(path) as tif:
        tif.write(levels[0], tile=(16, 16), subifds=len(levels) - 1, **kw)
        for level in levels[1:]:
            tif.write(level, tile=(16, 16), subfiletype=1, **kw)


def test_slides_read_colour_models_as_the_image_reader(tmp_path):
    big = np.tile(RGB, (2, 2, 1))  # 64 x 128
    pyramid(tmp_path / 'cmyk.tif', [cmyk_of(big), cmyk_of(big[::2, ::2])],
            photometric='separated')
    slide = TiffSlide(str(tmp_path / 'cmyk.tif'))
    assert len(slide.level_shapes) == 2
    assert np.abs(slide.read(0, 0, 0, 64, 128).astype(int) - big).max() <= 2
    assert np.abs(slide.read(1, 0, 0, 32, 64).astype(int) - big[::2, ::2]).max() <= 2
    slide.close()
    pyramid(tmp_path / 'logl.tif', [GRAY, GRAY[::2, ::2]], photometric=32844)
    with pytest.raises(SlideError, match='logl.tif: level 0: .*LOGL'):
        TiffSlide(str(tmp_path / 'logl.tif'))
