//! The avatar as Blink Qt uploads it (blink-compat §3.4): always PNG, scaled to fit 256×256
//! with its aspect ratio kept. Scaling averages the source pixels each target pixel covers
//! (a box filter), which is what downscaling a photo by large factors needs.
//!
//! Input is what pres-content allows (OMA Presence Content XDM: PNG, JPEG and GIF): users
//! pick photos, which are JPEG, and a JPEG photo from a camera is stored sideways with an
//! EXIF orientation tag (TIFF 6.0 tag 274) that viewers apply, so it is applied here too.
//! A GIF gives its first frame. Decoding is bounded in dimensions and memory.

use std::num::NonZeroU64;

use zune_jpeg::zune_core::colorspace::ColorSpace;
use zune_jpeg::zune_core::options::DecoderOptions;

use crate::content::{ContentError, Icon};

/// Largest avatar side after scaling (Qt's limit).
pub const MAX_SIDE: u32 = 256;
/// Largest source side accepted.
const MAX_SOURCE_SIDE: u32 = 8192;
/// Memory a decoder may allocate.
const MAX_DECODE_BYTES: usize = 64 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum AvatarError {
    #[error("not a PNG, JPEG or GIF image")]
    UnsupportedFormat,
    #[error("unreadable image: {0}")]
    Decode(String),
    #[error("image larger than {MAX_SOURCE_SIDE}×{MAX_SOURCE_SIDE} pixels")]
    TooLarge,
    #[error("cannot encode PNG: {0}")]
    Encode(String),
    #[error(transparent)]
    Content(#[from] ContentError),
}

/// An 8-bit RGBA image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rgba {
    pub width: u32,
    pub height: u32,
    pub pixels: Vec<u8>,
}

const PNG_SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";
/// SOI followed by the first marker's 0xFF.
const JPEG_SIGNATURE: &[u8] = b"\xFF\xD8\xFF";
const GIF_SIGNATURES: [&[u8]; 2] = [b"GIF87a", b"GIF89a"];

/// Decodes a PNG, JPEG or GIF into RGBA, the right way up.
pub fn decode(bytes: &[u8]) -> Result<Rgba, AvatarError> {
    if bytes.starts_with(PNG_SIGNATURE) {
        decode_png(bytes)
    } else if bytes.starts_with(JPEG_SIGNATURE) {
        decode_jpeg(bytes)
    } else if GIF_SIGNATURES.iter().any(|s| bytes.starts_with(s)) {
        decode_gif(bytes)
    } else {
        Err(AvatarError::UnsupportedFormat)
    }
}

/// Decodes a PNG into RGBA.
pub fn decode_png(bytes: &[u8]) -> Result<Rgba, AvatarError> {
    if !bytes.starts_with(PNG_SIGNATURE) {
        return Err(AvatarError::UnsupportedFormat);
    }
    let decode = |e: png::DecodingError| AvatarError::Decode(e.to_string());
    let mut decoder = png::Decoder::new_with_limits(
        std::io::Cursor::new(bytes),
        png::Limits {
            bytes: MAX_DECODE_BYTES,
        },
    );
    decoder.set_transformations(png::Transformations::normalize_to_color8());
    let mut reader = decoder.read_info().map_err(decode)?;
    let (width, height) = reader.info().size();
    check_size(width, height)?;
    let size = reader.output_buffer_size().ok_or(AvatarError::TooLarge)?;
    let mut buffer = vec![0; size];
    let frame = reader.next_frame(&mut buffer).map_err(decode)?;
    let data = &buffer[..frame.buffer_size()];
    let pixels: Vec<u8> = match frame.color_type {
        png::ColorType::Rgba => data.to_vec(),
        png::ColorType::Rgb => data
            .chunks_exact(3)
            .flat_map(|p| [p[0], p[1], p[2], 255])
            .collect(),
        png::ColorType::GrayscaleAlpha => data
            .chunks_exact(2)
            .flat_map(|p| [p[0], p[0], p[0], p[1]])
            .collect(),
        png::ColorType::Grayscale => data.iter().flat_map(|&g| [g, g, g, 255]).collect(),
        // Expanded by the transformations above; never produced.
        png::ColorType::Indexed => return Err(AvatarError::Decode("indexed output".into())),
    };
    Ok(Rgba {
        width,
        height,
        pixels,
    })
}

fn check_size(width: u32, height: u32) -> Result<(), AvatarError> {
    if width > MAX_SOURCE_SIDE || height > MAX_SOURCE_SIDE {
        return Err(AvatarError::TooLarge);
    }
    Ok(())
}

/// Decodes a baseline or progressive JPEG (any colour space the decoder converts to RGBA)
/// and applies its EXIF orientation.
fn decode_jpeg(bytes: &[u8]) -> Result<Rgba, AvatarError> {
    let decode = |e: zune_jpeg::errors::DecodeErrors| AvatarError::Decode(e.to_string());
    // The decoder's own limit would report an oversized picture as malformed; the headers
    // cost nothing to read, so the size is checked below, before any pixel is allocated.
    let any_side = usize::from(u16::MAX);
    let options = DecoderOptions::default()
        .set_max_width(any_side)
        .set_max_height(any_side)
        .jpeg_set_out_colorspace(ColorSpace::RGBA);
    let mut decoder =
        zune_jpeg::JpegDecoder::new_with_options(std::io::Cursor::new(bytes), options);
    decoder.decode_headers().map_err(decode)?;
    let info = decoder
        .info()
        .ok_or_else(|| AvatarError::Decode("no JPEG header".into()))?;
    let (width, height) = (u32::from(info.width), u32::from(info.height));
    check_size(width, height)?;
    let size = decoder.output_buffer_size().ok_or(AvatarError::TooLarge)?;
    if size > MAX_DECODE_BYTES {
        return Err(AvatarError::TooLarge);
    }
    let mut pixels = vec![0; size];
    decoder.decode_into(&mut pixels).map_err(decode)?;
    let orientation = decoder.exif().and_then(|exif| exif_orientation(exif));
    Ok(orient(
        Rgba {
            width,
            height,
            pixels,
        },
        orientation.unwrap_or(1),
    ))
}

/// Decodes a GIF's first frame onto its logical screen (transparent where the frame does not
/// cover it).
fn decode_gif(bytes: &[u8]) -> Result<Rgba, AvatarError> {
    let decode = |e: gif::DecodingError| AvatarError::Decode(e.to_string());
    let mut options = gif::DecodeOptions::new();
    options.set_color_output(gif::ColorOutput::RGBA);
    if let Some(limit) = NonZeroU64::new(MAX_DECODE_BYTES as u64) {
        options.set_memory_limit(gif::MemoryLimit::Bytes(limit));
    }
    let mut decoder = options
        .read_info(std::io::Cursor::new(bytes))
        .map_err(decode)?;
    let (width, height) = (u32::from(decoder.width()), u32::from(decoder.height()));
    check_size(width, height)?;
    let frame = decoder
        .read_next_frame()
        .map_err(decode)?
        .ok_or_else(|| AvatarError::Decode("a GIF without images".into()))?;
    let mut pixels = vec![0; width as usize * height as usize * 4];
    let frame_width = usize::from(frame.width);
    if frame_width == 0 {
        return Err(AvatarError::Decode("an empty GIF frame".into()));
    }
    for (row, line) in frame.buffer.chunks_exact(frame_width * 4).enumerate() {
        let y = usize::from(frame.top) + row;
        if y >= height as usize {
            break;
        }
        let left = usize::from(frame.left).min(width as usize);
        let visible = (width as usize - left).min(frame_width);
        let at = (y * width as usize + left) * 4;
        pixels[at..at + visible * 4].copy_from_slice(&line[..visible * 4]);
    }
    Ok(Rgba {
        width,
        height,
        pixels,
    })
}

/// The Orientation (tag 274) of IFD0 in EXIF data that starts at its TIFF header: 1 to 8,
/// None when absent or unreadable.
fn exif_orientation(tiff: &[u8]) -> Option<u16> {
    const ORIENTATION: u32 = 274;
    const SHORT: u32 = 3;
    let little = match tiff.get(..2)? {
        b"II" => true,
        b"MM" => false,
        _ => return None,
    };
    // An unsigned TIFF field of `len` bytes at `at`, in the file's byte order.
    let number = |at: usize, len: usize| {
        let bytes = tiff.get(at..at.checked_add(len)?)?;
        let digit = |n: u32, &b: &u8| n << 8 | u32::from(b);
        Some(if little {
            bytes.iter().rev().fold(0, digit)
        } else {
            bytes.iter().fold(0, digit)
        })
    };
    let u16_at = |at: usize| number(at, 2);
    if u16_at(2)? != 42 {
        return None;
    }
    let ifd = usize::try_from(number(4, 4)?).ok()?;
    let entries = usize::try_from(u16_at(ifd)?).ok()?;
    (0..entries)
        .map(|i| ifd + 2 + i * 12)
        .find(|&entry| u16_at(entry) == Some(ORIENTATION))
        .filter(|&entry| u16_at(entry + 2) == Some(SHORT))
        .and_then(|entry| u16_at(entry + 8))
        .and_then(|o| u16::try_from(o).ok())
        .filter(|o| (1..=8).contains(o))
}

/// Applies an EXIF orientation: the stored image is turned and mirrored into the image a
/// viewer shows (values 5 to 8 swap width and height).
fn orient(image: Rgba, orientation: u16) -> Rgba {
    if !(2..=8).contains(&orientation) {
        return image;
    }
    let (w, h) = (image.width as usize, image.height as usize);
    let swaps = orientation >= 5;
    let (out_w, out_h) = if swaps { (h, w) } else { (w, h) };
    let mut pixels = Vec::with_capacity(image.pixels.len());
    for y in 0..out_h {
        for x in 0..out_w {
            let (sx, sy) = match orientation {
                2 => (w - 1 - x, y),
                3 => (w - 1 - x, h - 1 - y),
                4 => (x, h - 1 - y),
                5 => (y, x),
                6 => (y, h - 1 - x),
                7 => (w - 1 - y, h - 1 - x),
                _ => (w - 1 - y, x),
            };
            let at = (sy * w + sx) * 4;
            pixels.extend_from_slice(&image.pixels[at..at + 4]);
        }
    }
    Rgba {
        width: out_w as u32,
        height: out_h as u32,
        pixels,
    }
}

pub fn encode_png(image: &Rgba) -> Result<Vec<u8>, AvatarError> {
    let encode = |e: png::EncodingError| AvatarError::Encode(e.to_string());
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, image.width, image.height);
    encoder.set_color(png::ColorType::Rgba);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().map_err(encode)?;
    writer.write_image_data(&image.pixels).map_err(encode)?;
    writer.finish().map_err(encode)?;
    Ok(out)
}

/// Scales `image` down to fit `max`×`max` (never up), averaging the pixels each target pixel
/// covers, weighted by alpha so transparent pixels do not darken the edges.
pub fn fit(image: &Rgba, max: u32) -> Rgba {
    let longest = image.width.max(image.height);
    if longest <= max {
        return image.clone();
    }
    let scale = |side: u32| ((u64::from(side) * u64::from(max)) / u64::from(longest)).max(1) as u32;
    let (width, height) = (scale(image.width), scale(image.height));
    let mut pixels = Vec::with_capacity(width as usize * height as usize * 4);
    let span = |target: u32, size: u32, source: u32| {
        let start = u64::from(target) * u64::from(source) / u64::from(size);
        let end = (u64::from(target + 1) * u64::from(source) / u64::from(size)).max(start + 1);
        (start as u32)..(end as u32)
    };
    for y in 0..height {
        let rows = span(y, height, image.height);
        for x in 0..width {
            let columns = span(x, width, image.width);
            let (mut sum, mut alpha, mut count) = ([0u64; 3], 0u64, 0u64);
            for sy in rows.clone() {
                for sx in columns.clone() {
                    let at = (sy as usize * image.width as usize + sx as usize) * 4;
                    let p = &image.pixels[at..at + 4];
                    let a = u64::from(p[3]);
                    for (s, &c) in sum.iter_mut().zip(p) {
                        *s += u64::from(c) * a;
                    }
                    alpha += a;
                    count += 1;
                }
            }
            let colour = |s: u64| s.checked_div(alpha).unwrap_or(0) as u8;
            pixels.extend_from_slice(&[
                colour(sum[0]),
                colour(sum[1]),
                colour(sum[2]),
                (alpha / count.max(1)) as u8,
            ]);
        }
    }
    Rgba {
        width,
        height,
        pixels,
    }
}

/// The icon to upload for a PNG, JPEG or GIF file: decoded, turned the right way up,
/// scaled to fit 256×256, encoded as PNG.
pub fn prepare(bytes: &[u8]) -> Result<Icon, AvatarError> {
    let image = fit(&decode(bytes)?, MAX_SIDE);
    Ok(Icon::new("image/png", &encode_png(&image)?)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(width: u32, height: u32, pixel: [u8; 4]) -> Rgba {
        Rgba {
            width,
            height,
            pixels: pixel.repeat((width * height) as usize),
        }
    }

    #[test]
    fn large_images_are_scaled_to_fit_256_keeping_the_aspect_ratio() {
        let source = encode_png(&image(1024, 512, [200, 100, 50, 255])).unwrap();
        let icon = prepare(&source).unwrap();
        assert_eq!(icon.mime_type, "image/png");
        let back = decode_png(&icon.bytes().unwrap()).unwrap();
        assert_eq!((back.width, back.height), (256, 128));
        assert_eq!(&back.pixels[..4], &[200, 100, 50, 255]);
    }

    #[test]
    fn small_images_are_kept_and_averaging_weights_alpha() {
        let small = image(10, 20, [1, 2, 3, 4]);
        assert_eq!(fit(&small, 256), small);
        // Half opaque red, half transparent black: red at half alpha, not dark red.
        let mut mixed = image(2, 1, [255, 0, 0, 255]);
        mixed.pixels[4..].copy_from_slice(&[0, 0, 0, 0]);
        let one = fit(&mixed, 1);
        assert_eq!(one.pixels, [255, 0, 0, 127]);
    }

    #[test]
    fn refuses_what_is_not_a_usable_image() {
        assert!(matches!(
            prepare(b"BM\x00\x00 a bitmap"),
            Err(AvatarError::UnsupportedFormat)
        ));
        for garbage in [
            &b"\x89PNG\r\n\x1a\ngarbage"[..],
            b"\xFF\xD8\xFF\xE0garbage",
            b"GIF89agarbage",
        ] {
            assert!(
                matches!(prepare(garbage), Err(AvatarError::Decode(_))),
                "{garbage:?}"
            );
        }
        let huge = encode_png(&image(MAX_SOURCE_SIDE + 1, 1, [0; 4])).unwrap();
        assert!(matches!(prepare(&huge), Err(AvatarError::TooLarge)));
        let huge_jpeg = jpeg(MAX_SOURCE_SIDE as u16 + 1, 1, None);
        assert!(matches!(prepare(&huge_jpeg), Err(AvatarError::TooLarge)));
    }

    /// A JPEG whose left half is red and right half blue, with an EXIF orientation if given.
    fn jpeg(width: u16, height: u16, orientation: Option<u16>) -> Vec<u8> {
        let mut rgb = Vec::new();
        for _ in 0..height {
            for x in 0..width {
                rgb.extend_from_slice(if x < width / 2 {
                    &[255, 0, 0]
                } else {
                    &[0, 0, 255]
                });
            }
        }
        let mut out = Vec::new();
        let mut encoder = jpeg_encoder::Encoder::new(&mut out, 95);
        if let Some(orientation) = orientation {
            // "Exif\0\0", then a big-endian TIFF header with one IFD0 entry: 274, SHORT, 1.
            let mut app1 = b"Exif\0\0MM\0\x2a\0\0\0\x08\0\x01\x01\x12\0\x03\0\0\0\x01".to_vec();
            app1.extend_from_slice(&orientation.to_be_bytes());
            app1.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
            encoder.add_app_segment(1, &app1).unwrap();
        }
        encoder
            .encode(&rgb, width, height, jpeg_encoder::ColorType::Rgb)
            .unwrap();
        out
    }

    fn is_red(p: &[u8]) -> bool {
        p[0] > 200 && p[1] < 60 && p[2] < 60 && p[3] == 255
    }

    fn is_blue(p: &[u8]) -> bool {
        p[0] < 60 && p[1] < 60 && p[2] > 200 && p[3] == 255
    }

    #[test]
    fn a_jpeg_photo_becomes_a_png_icon_scaled_to_fit() {
        let icon = prepare(&jpeg(1024, 512, None)).unwrap();
        assert_eq!(icon.mime_type, "image/png");
        let back = decode_png(&icon.bytes().unwrap()).unwrap();
        assert_eq!((back.width, back.height), (256, 128));
        assert!(is_red(&back.pixels[..4]), "{:?}", &back.pixels[..4]);
        let last = back.pixels.len() - 4;
        assert!(is_blue(&back.pixels[last..]), "{:?}", &back.pixels[last..]);
    }

    #[test]
    fn a_jpeg_is_turned_by_its_exif_orientation() {
        // Stored 64×32, red left and blue right; orientation 6 means "turn 90° clockwise to
        // view": the viewer sees 32×64 with red on top.
        let turned = decode(&jpeg(64, 32, Some(6))).unwrap();
        assert_eq!((turned.width, turned.height), (32, 64));
        assert!(is_red(&turned.pixels[..4]));
        let last = turned.pixels.len() - 4;
        assert!(is_blue(&turned.pixels[last..]));
        // 8 is the opposite turn: blue on top.
        let turned = decode(&jpeg(64, 32, Some(8))).unwrap();
        assert_eq!((turned.width, turned.height), (32, 64));
        assert!(is_blue(&turned.pixels[..4]));
        // 3 is upside down: blue on the left.
        let turned = decode(&jpeg(64, 32, Some(3))).unwrap();
        assert_eq!((turned.width, turned.height), (64, 32));
        assert!(is_blue(&turned.pixels[..4]));
        // Without EXIF, or with an orientation out of range, the image stays as stored.
        for orientation in [None, Some(1), Some(9)] {
            let kept = decode(&jpeg(64, 32, orientation)).unwrap();
            assert_eq!((kept.width, kept.height), (64, 32));
            assert!(is_red(&kept.pixels[..4]));
        }
    }

    #[test]
    fn every_orientation_maps_corners_like_the_tiff_definition() {
        // A 3×2 image whose pixels are numbered 0..6 row by row (in the red channel).
        let source = Rgba {
            width: 3,
            height: 2,
            pixels: (0..6u8).flat_map(|n| [n, 0, 0, 255]).collect(),
        };
        let red = |image: &Rgba| image.pixels.chunks(4).map(|p| p[0]).collect::<Vec<_>>();
        let expected: [(u16, (u32, u32), [u8; 6]); 8] = [
            (1, (3, 2), [0, 1, 2, 3, 4, 5]),
            (2, (3, 2), [2, 1, 0, 5, 4, 3]),
            (3, (3, 2), [5, 4, 3, 2, 1, 0]),
            (4, (3, 2), [3, 4, 5, 0, 1, 2]),
            (5, (2, 3), [0, 3, 1, 4, 2, 5]),
            (6, (2, 3), [3, 0, 4, 1, 5, 2]),
            (7, (2, 3), [5, 2, 4, 1, 3, 0]),
            (8, (2, 3), [2, 5, 1, 4, 0, 3]),
        ];
        for (orientation, size, order) in expected {
            let turned = orient(source.clone(), orientation);
            assert_eq!((turned.width, turned.height), size, "{orientation}");
            assert_eq!(red(&turned), order, "{orientation}");
        }
    }

    #[test]
    fn unreadable_exif_is_no_orientation() {
        assert_eq!(exif_orientation(b""), None);
        assert_eq!(exif_orientation(b"XX\0\x2a\0\0\0\x08"), None);
        // IFD offset beyond the data, and an entry count larger than the data holds.
        assert_eq!(exif_orientation(b"MM\0\x2a\xff\xff\xff\xff"), None);
        assert_eq!(exif_orientation(b"II\x2a\0\x08\0\0\0\xff\xff"), None);
        // Little-endian works as well as big-endian.
        let little = b"II\x2a\0\x08\0\0\0\x01\0\x12\x01\x03\0\x01\0\0\0\x06\0\0\0";
        assert_eq!(exif_orientation(little), Some(6));
    }

    #[test]
    fn a_gif_gives_its_first_frame_on_its_screen() {
        let mut out = Vec::new();
        {
            let mut encoder = gif::Encoder::new(&mut out, 4, 2, &[255, 0, 0, 0, 0, 255]).unwrap();
            // A 2×1 blue frame at (1, 1); the rest of the screen is not covered.
            let mut frame = gif::Frame {
                left: 1,
                top: 1,
                width: 2,
                height: 1,
                buffer: std::borrow::Cow::Owned(vec![1, 1]),
                ..gif::Frame::default()
            };
            encoder.write_frame(&frame).unwrap();
            frame.buffer = std::borrow::Cow::Owned(vec![0, 0]);
            encoder.write_frame(&frame).unwrap();
        }
        let image = decode(&out).unwrap();
        assert_eq!((image.width, image.height), (4, 2));
        let pixel = |x: usize, y: usize| &image.pixels[(y * 4 + x) * 4..][..4];
        assert_eq!(pixel(1, 1), [0, 0, 255, 255]);
        assert_eq!(pixel(2, 1), [0, 0, 255, 255]);
        assert_eq!(pixel(0, 0), [0, 0, 0, 0], "uncovered stays transparent");
        assert_eq!(pixel(3, 1), [0, 0, 0, 0]);
    }
}
