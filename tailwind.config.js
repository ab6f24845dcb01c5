/** Tailwind scans the templ sources, the Go view models and handlers that pick classes
 * (chart colours, active tabs), and our one script for class names. */
module.exports = {
  content: [
    "./views/**/*.templ",
    "./views/**/*.go",
    "./handlers/**/*.go",
    "./static/app.js",
    // Tests are not the product: their strings must not add classes to the CSS.
    "!./views/**/*_test.go",
    "!./handlers/**/*_test.go",
  ],
  theme: {
    extend: {
      fontFamily: {
        sans: ["Inter", "ui-sans-serif", "system-ui", "-apple-system", "Segoe UI", "Roboto", "sans-serif"],
      },
    },
  },
  plugins: [],
};
