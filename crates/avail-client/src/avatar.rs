//! The avatar as Blink Qt uploads it (blink-compat §3.4): always PNG, scaled to fit 256×256
//! with its aspect ratio kept. Scaling averages the source pixels each target pixel covers
//! (a box filter), which is what downscaling a photo by large factors needs.
//!
//! Input is PNG only (any colour type and depth); decoding is bounded in dimensions and memory.

use crate::content::{ContentError, Icon};

/// Largest avatar side after scaling (Qt's limit).
pub const MAX_SIDE: u32 = 256;
/// Largest source side accepted.
const MAX_SOURCE_SIDE: u32 = 8192;
/// Memory the PNG decoder may allocate.
const MAX_DECODE_BYTES: usize = 64 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum AvatarError {
    #[error("not a PNG image (convert the picture to PNG first)")]
    NotPng,
    #[error("unreadable PNG: {0}")]
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

/// Decodes a PNG into RGBA.
pub fn decode_png(bytes: &[u8]) -> Result<Rgba, AvatarError> {
    if !bytes.starts_with(PNG_SIGNATURE) {
        return Err(AvatarError::NotPng);
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
    if width > MAX_SOURCE_SIDE || height > MAX_SOURCE_SIDE {
        return Err(AvatarError::TooLarge);
    }
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

/// The icon to upload for a PNG file: decoded, scaled to fit 256×256, re-encoded.
pub fn prepare(bytes: &[u8]) -> Result<Icon, AvatarError> {
    let image = fit(&decode_png(bytes)?, MAX_SIDE);
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
    fn refuses_what_is_not_a_usable_png() {
        assert!(matches!(prepare(b"GIF89a...."), Err(AvatarError::NotPng)));
        assert!(matches!(
            prepare(b"\x89PNG\r\n\x1a\ngarbage"),
            Err(AvatarError::Decode(_))
        ));
        let huge = encode_png(&image(MAX_SOURCE_SIDE + 1, 1, [0; 4])).unwrap();
        assert!(matches!(prepare(&huge), Err(AvatarError::TooLarge)));
    }
}
